"""Distillation: a tiny run on real faces learns, leaves the teacher alone, and writes a student
that loads with its card; resumed runs and stale targets are handled."""
import glob
import json
import os
import shutil

import numpy as np
import pytest

from tests.conftest import run_script


@pytest.fixture(scope="module")
def faces(lfw, tmp_path_factory):
    """24 LFW photos in one folder, no classes."""
    folder = tmp_path_factory.mktemp("faces")
    people = sorted(p for p in os.listdir(lfw[0]) if os.path.isdir(os.path.join(lfw[0], p)))[:24]
    for person in people:
        shutil.copy(os.path.join(lfw[0], person, f"{person}_0001.jpg"), folder)
    return str(folder)


def tiny_config(faces, save_dir, **kw):
    from facenet.training.distillation import DistillConfig

    settings = dict(images=faces, input_shape=(64, 64, 3), epochs=3, batch_size=8, views=1,
                    crop="lfw", lfw_eval=False, save_dir=str(save_dir), precise_bn_batches=2,
                    init_lr=2e-3, verbose=0)
    settings.update(kw)
    return DistillConfig(**settings)


@pytest.fixture(scope="module")
def tiny_run(faces, pretrained_path, tmp_path_factory):
    from facenet.training.distillation import distill
    from utils.fileio import sha256_of

    before = sha256_of(pretrained_path)
    save = tmp_path_factory.mktemp("distill")
    run_dir, history, model = distill(tiny_config(faces, save))
    return run_dir, history, model, before


def test_a_tiny_run_lowers_the_distillation_loss(tiny_run):
    _, history, _, _ = tiny_run
    assert len(history["loss"]) == 3
    assert history["loss"][-1] < history["loss"][0] - 0.01, history["loss"]


def test_the_teacher_is_never_changed(tiny_run, pretrained_path, faces):
    """The teacher file is untouched, and the cached targets are exactly what a fresh load of
    it gives for those views: nothing trained it."""
    from facenet.predictor import Facenet
    from facenet.training.augment import Augmentation
    from facenet.training.distillation import ViewRenderer, list_images
    from utils.fileio import sha256_of
    from utils.image import LFW_CROP

    run_dir, _, _, before = tiny_run
    assert sha256_of(pretrained_path) == before
    cached = np.load(os.path.join(run_dir, "teacher", "view_000.npy"))
    teacher = Facenet(model_path=pretrained_path, align="off", precision="auto",
                      engine="keras")  # as the distillation runs its teacher
    renderer = ViewRenderer(list_images(faces), LFW_CROP, Augmentation(), seed=0)
    fresh = teacher.embed_arrays(renderer.batch(np.arange(8), 0, 160))
    assert np.allclose(cached[:8], fresh, atol=1e-5)
    assert np.allclose(np.linalg.norm(cached, axis=1), 1, atol=1e-3)


def test_the_student_loads_with_its_card_and_does_not_collapse(tiny_run, faces):
    """The student written by the run loads like any model, and in inference mode tells the
    faces apart (a collapsed student maps every face to the same embedding)."""
    from facenet.predictor import Facenet
    from facenet.weights import read_card

    run_dir, _, _, _ = tiny_run
    path = os.path.join(run_dir, "best.weights.h5")
    card = read_card(path)
    assert card["backbone"] == "mobilenet" and card["input_shape"] == [64, 64, 3]
    assert card["distilled_from"]["teacher"] == "facenet_inception_resnetv1.weights.h5"
    student = Facenet(model_path=path, crop="lfw", align="off")
    emb = student.embed(sorted(glob.glob(os.path.join(faces, "*.jpg")))[:8])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-3)
    cos = emb @ emb.T
    assert cos[~np.eye(len(emb), dtype=bool)].mean() < 0.95, "embeddings collapsed"


def test_a_resumed_run_goes_on_and_keeps_its_history(faces, pretrained_path, tmp_path):
    from facenet.training.distillation import distill

    run_dir, history, _ = distill(tiny_config(faces, tmp_path, epochs=1, views=2))
    assert len(history["loss"]) == 1
    cfg = tiny_config(faces, tmp_path, epochs=2, resume=run_dir)
    again, history, _ = distill(cfg)
    assert again == run_dir and len(history["loss"]) == 2
    assert cfg.views == 2  # the run's own settings, not the caller's defaults
    assert os.path.exists(os.path.join(run_dir, "teacher", "view_001.npy"))


def test_stale_teacher_targets_are_refused(faces, pretrained_path, tmp_path):
    from facenet.training.distillation import TeacherTargets
    from utils.errors import FacenetError

    TeacherTargets(str(tmp_path), {"images": 24, "seed": 0})
    with pytest.raises(FacenetError, match="'seed'.*another setup"):
        TeacherTargets(str(tmp_path), {"images": 24, "seed": 1})


def test_an_unlabelled_folder_is_a_training_set(faces, tmp_path):
    from facenet.training.distillation import list_images
    from utils.errors import FacenetError

    assert len(list_images(faces)) == 24
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FacenetError, match="no image files"):
        list_images(str(tmp_path))


def test_distillation_losses():
    """cosine is 1 - cos per face (half the squared distance of unit vectors); relation is 0
    when the similarity structure matches even if the directions differ."""
    from facenet.training.distillation import distill_loss

    rng = np.random.default_rng(0)
    t = rng.normal(size=(6, 128)).astype("float32")
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    s = rng.normal(size=(6, 128)).astype("float32")
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    cos = float(distill_loss("cosine")(t, s))
    assert cos == pytest.approx(np.mean(np.sum((s - t) ** 2, axis=1)) / 2, rel=1e-5)
    q, _ = np.linalg.qr(rng.normal(size=(128, 128)))
    rotated = (t @ q).astype("float32")  # same pairwise similarities, other directions
    assert float(distill_loss("relation")(t, rotated)) < 1e-8
    assert float(distill_loss("cosine")(t, rotated)) > 0.5
    with pytest.raises(ValueError, match="unknown distillation loss"):
        distill_loss("l1")


def test_views_are_reproducible_and_the_plain_view_is_the_face_box(lfw):
    from PIL import Image

    from facenet.training.augment import Augmentation, render, view_params
    from facenet.training.distillation import face_box
    from utils.image import LFW_CROP

    image = Image.open(os.path.join(lfw[0], "Aaron_Eckhart", "Aaron_Eckhart_0001.jpg"))
    image = image.convert("RGB")
    box = face_box(image, LFW_CROP)
    aug = Augmentation()
    a = render(image, box, view_params(aug, 0, 5, 3), 96)
    b = render(image, box, view_params(aug, 0, 5, 3), 96)
    c = render(image, box, view_params(aug, 0, 5, 4), 96)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    plain = render(image, box, view_params(aug, 0, 5, -1), 140)
    expected = np.asarray(image.crop((55, 58, 195, 198)))
    assert np.abs(plain.astype(int) - expected).mean() < 2
    with pytest.raises(ValueError, match="probability"):
        Augmentation(flip=2)


def test_train_py_teacher_runs_a_distillation(faces, pretrained_path, tmp_path):
    """With --quiet: none of the run's info lines, one line per epoch, the run folder."""
    result = run_script(["train.py", "--teacher", "--annotation-path", faces,
                         "--input-shape", "64", "64", "3", "--epochs", "1", "--batch-size", "8",
                         "--views", "1", "--crop", "lfw", "--no-lfw-eval", "--quiet",
                         "--precise-bn-batches", "1", "--save-dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    [run_dir] = glob.glob(str(tmp_path / "distill_*"))
    assert result.stdout.strip().splitlines()[-1] == f"Done: {run_dir}"
    for info in ("Teacher targets of view 1", "Distil mobilenet", "Epoch 1/1: loss"):
        assert info not in result.stdout + result.stderr
    with open(os.path.join(run_dir, "best.json")) as f:
        card = json.load(f)
    assert card["backbone"] == "mobilenet" and card["distilled_from"]["views"] == 1


def test_without_precise_batchnorm_a_young_student_collapses(faces, pretrained_path, tmp_path):
    """The control for the test above: the same tiny run with the BatchNorm statistics left to
    their moving averages maps every face to one embedding (docs/distillation.md says why)."""
    from facenet.predictor import Facenet
    from facenet.training.distillation import distill

    run_dir, _, _ = distill(tiny_config(faces, tmp_path, epochs=1, precise_bn_batches=0))
    student = Facenet(model_path=os.path.join(run_dir, "last.weights.h5"), crop="lfw",
                      align="off", threshold=1.0)
    emb = student.embed(sorted(glob.glob(os.path.join(faces, "*.jpg")))[:8])
    cos = emb @ emb.T
    assert cos[~np.eye(len(emb), dtype=bool)].mean() > 0.99
