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


@pytest.mark.slow
def test_a_tiny_run_lowers_the_distillation_loss(tiny_run):
    _, history, _, _ = tiny_run
    assert len(history["loss"]) == 3
    assert history["loss"][-1] < history["loss"][0] - 0.01, history["loss"]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_resumed_run_goes_on_and_keeps_its_history(faces, pretrained_path, tmp_path):
    from facenet.training.distillation import DistillConfig, distill

    run_dir, history, _ = distill(tiny_config(faces, tmp_path, epochs=1, views=2))
    assert len(history["loss"]) == 1
    # views left at DistillConfig's default: not given, so the run's own 2 (another value
    # given would be refused, tests/test_training_resume_settings.py)
    cfg = tiny_config(faces, tmp_path, epochs=2, resume=run_dir, views=DistillConfig().views)
    again, history, _ = distill(cfg)
    assert again == run_dir and len(history["loss"]) == 2
    assert cfg.views == 2  # the run's own settings, not the caller's defaults
    assert os.path.exists(os.path.join(run_dir, "teacher", "view_001.npy"))


@pytest.mark.slow
def test_teacher_targets_are_made_when_an_epoch_first_needs_them(faces, tmp_path):
    """Training starts after the first view's targets: each later view's are made before the
    epoch that trains on it, so a long run's first epoch is not behind all its views."""
    from facenet.training.distillation import distill

    made = []

    def evaluate(model):  # called at each epoch's end: which views exist by then
        made.append(sorted(os.path.basename(p) for p in glob.glob(
            os.path.join(str(tmp_path), "*", "teacher", "view_*.npy"))))
        return 0.5

    distill(tiny_config(faces, tmp_path, epochs=3, views=3), evaluate=evaluate)
    assert made == [["view_000.npy"], ["view_000.npy", "view_001.npy"],
                    ["view_000.npy", "view_001.npy", "view_002.npy"]]


@pytest.mark.slow
def test_an_int8_teacher_makes_the_targets_and_they_serve_no_float_run(faces, pretrained_path,
                                                                      tmp_path):
    """--teacher-precision int8: the cached targets are the int8 ONNX teacher's embeddings of the
    views (close to the float network's), and a run with the float teacher refuses them."""
    pytest.importorskip("onnxruntime")
    from facenet.predictor import Facenet
    from facenet.training.augment import Augmentation
    from facenet.training.distillation import TeacherTargets, ViewRenderer, distill, list_images
    from utils.errors import FacenetError
    from utils.image import LFW_CROP

    targets = str(tmp_path / "targets")
    distill(tiny_config(faces, tmp_path, epochs=1, teacher_precision="int8",
                        targets_dir=targets))
    cached = np.load(os.path.join(targets, "view_000.npy"))
    renderer = ViewRenderer(list_images(faces), LFW_CROP, Augmentation(), seed=0)
    views = renderer.batch(np.arange(8), 0, 160)
    int8 = Facenet(model_path=pretrained_path, align="off", precision="int8", engine="onnx")
    assert np.allclose(cached[:8], int8.embed_arrays(views), atol=1e-5)
    float32 = Facenet(model_path=pretrained_path, align="off", precision="float32",
                      engine="keras").embed_arrays(views)
    cosines = np.sum(cached[:8] * float32, axis=1)
    assert cosines.min() > 0.99 and not np.allclose(cached[:8], float32, atol=1e-5)
    with open(os.path.join(targets, "meta.json"), encoding="utf-8") as f:
        meta = {k: v for k, v in json.load(f).items() if k != "teacher_precision"}
    with pytest.raises(FacenetError, match="teacher_precision.*another setup"):
        TeacherTargets(targets, meta)  # the float teacher's run, same images and views


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


@pytest.mark.slow
def test_train_py_teacher_runs_a_distillation(faces, pretrained_path, tmp_path):
    """With --quiet: none of the run's info lines, one line per epoch, the run folder."""
    result = run_script(["train.py", "--teacher", "--annotation-path", faces,
                         "--input-shape", "64", "64", "3", "--epochs", "1", "--batch-size", "8",
                         "--views", "1", "--crop", "lfw", "--no-lfw-eval", "--quiet",
                         "--precise-bn-batches", "1", "--save-dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    [run_dir] = glob.glob(str(tmp_path / "distill_*"))
    assert result.stdout.strip().splitlines()[-1] == f"Done: {run_dir}"
    for info in ("Teacher targets of view 0", "Distil mobilenet", "Epoch 1/1: loss"):
        assert info not in result.stdout + result.stderr
    with open(os.path.join(run_dir, "best.json")) as f:
        card = json.load(f)
    assert card["backbone"] == "mobilenet" and card["distilled_from"]["views"] == 1


@pytest.mark.slow
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


def test_bfloat16_builds_a_bfloat16_student(faces):
    """--precision bfloat16 computes in bfloat16 (mixed: float32 weights); float32 stays so."""
    from facenet.training.distillation import build_student

    for precision, compute in (("bfloat16", "bfloat16"), ("float32", "float32")):
        model, chosen = build_student(tiny_config(faces, "unused", precision=precision))
        assert chosen == precision
        convs = [layer for layer in model.layers if layer.weights]
        assert {layer.dtype_policy.compute_dtype for layer in convs} == {compute}
        assert {w.dtype for w in model.weights} == {"float32"}


def test_the_student_starts_from_given_weights(tiny_run, faces, pretrained_path, tmp_path):
    """--model-path with --teacher: the student starts as the given model (same weights), so
    its first epoch's loss is the trained model's, far below a fresh student's first epoch."""
    from facenet.training.distillation import build_student, distill

    trained, fresh_history = os.path.join(tiny_run[0], "last.weights.h5"), tiny_run[1]
    model, _ = build_student(tiny_config(faces, tmp_path, init_weights=trained))
    reference = tiny_run[2]
    for a, b in zip(model.weights, reference.weights):
        assert np.array_equal(np.asarray(a), np.asarray(b)), a.path
    _, history, _ = distill(tiny_config(faces, tmp_path, epochs=1, init_weights=trained,
                                        init_lr=1e-5))
    first, last = fresh_history["loss"][0], fresh_history["loss"][-1]
    assert abs(history["loss"][0] - last) < abs(history["loss"][0] - first) / 2, \
        (history["loss"], fresh_history["loss"])


def test_start_weights_are_checked_before_any_work(faces, tmp_path):
    from facenet import weights as registry
    from facenet.training.distillation import distill
    from utils.errors import SettingError

    with pytest.raises(SettingError, match="not found"):
        distill(tiny_config(faces, tmp_path, init_weights=str(tmp_path / "nope.weights.h5")))
    mobilenet = registry.fetch(registry.default_model("mobilenet"))
    with pytest.raises(SettingError, match="are a mobilenet.*--backbone mobilenet"):
        distill(tiny_config(faces, tmp_path, backbone="inception_resnetv1",
                            input_shape=(160, 160, 3), init_weights=mobilenet))
    assert not os.listdir(tmp_path)


def test_views_are_rendered_once_and_read_back_exactly(tiny_run, faces, tmp_path):
    """The views kept beside the targets are the renderer's pixels, byte for byte (the plain
    view too), so a run with the cache trains on what a run without it renders."""
    from facenet.training.augment import Augmentation
    from facenet.training.distillation import StudentViews, ViewRenderer, list_images
    from utils.errors import FacenetError
    from utils.image import LFW_CROP

    folder = os.path.join(tiny_run[0], "teacher", "views_64px")
    views = StudentViews(folder, 24, 64)
    renderer = ViewRenderer(list_images(faces), LFW_CROP, Augmentation(), seed=0)
    idx = np.arange(24)
    for view in (0, StudentViews.PLAIN):
        assert np.array_equal(views.load(view), renderer.batch(idx, view, 64))
    damaged = StudentViews(str(tmp_path), 24, 64)
    np.save(damaged.path(0), np.zeros((3, 64, 64, 3), np.uint8))
    with pytest.raises(FacenetError, match="view_000.npy holds.*delete it"):
        damaged.load(0)


def test_a_mixed_view_is_the_blend_of_two_faces_and_its_target_the_teachers_embedding_of_it(
        faces, pretrained_path, tmp_path):
    """--aug-mix: a view blends the same view of a partner image into its own, and the cached
    teacher target is the teacher's embedding of that blended image (not of either face)."""
    from PIL import Image

    from facenet.predictor import Facenet
    from facenet.training.augment import (Augmentation, partner_index, render,
                                          view_params)
    from facenet.training.distillation import ViewRenderer, distill, face_box, list_images
    from utils.image import LFW_CROP

    teacher = Facenet(model_path=pretrained_path, align="off", precision="auto", engine="keras")
    for mode in ("mixup", "cutmix"):
        aug = Augmentation(mix=1.0, mix_mode=mode, mix_share=(0.6, 0.6))
        run_dir, _, _ = distill(tiny_config(faces, tmp_path / mode, epochs=1, augmentation=aug))
        paths = list_images(faces)
        params = view_params(aug, 0, 3, 0)
        other = partner_index(params, 3, len(paths))
        assert other != 3

        def view(i, p):
            image = Image.open(paths[i]).convert("RGB")
            return render(image, face_box(image, LFW_CROP), p, 160).astype(np.float32)

        own, partner = view(3, params), view(other, {**view_params(aug, 0, other, 0), "mix": 0})
        mixed = ViewRenderer(paths, LFW_CROP, aug, seed=0).batch([3], 0, 160)[0]
        if mode == "mixup":
            expected = np.clip(np.rint(0.6 * own + 0.4 * partner), 0, 255).astype(np.uint8)
            assert np.array_equal(mixed, expected)
        else:  # a square of 40% of the view from the partner, the rest the own image
            alike = (own == partner).all(axis=-1)
            from_partner = (mixed == partner.astype(np.uint8)).all(axis=-1) & ~alike
            assert 0.3 < from_partner.mean() < 0.45
        target = np.load(os.path.join(run_dir, "teacher", "view_000.npy"))[3]
        blended = teacher.embed_arrays(mixed[None])[0]
        assert float(target @ blended) > 0.9999
        for single in (own, partner):
            assert float(target @ teacher.embed_arrays(single.astype(np.uint8)[None])[0]) < 0.99


def test_an_erased_view_has_one_flat_square():
    from facenet.training.augment import Augmentation, NO_AUGMENTATION, render, view_params
    from PIL import Image

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (120, 120, 3), np.uint8))
    params = {**view_params(NO_AUGMENTATION, 0, 0, 0), "erase": (0.25, 0.5, 0.5)}
    for size in (64, 160):
        out = render(image, (0, 0, 120, 120), params, size)
        flat = (out == out[size // 2, size // 2]).all(axis=-1)
        assert abs(flat.mean() - 0.25) < 0.03, flat.mean()
    assert view_params(Augmentation(erase=1.0), 0, 0, 0)["erase"] is not None
    assert view_params(Augmentation(), 0, 0, 0)["erase"] is None
def test_too_small_a_folder_is_refused_before_any_run_folder(tmp_path):
    from PIL import Image

    from facenet.training.distillation import distill
    from utils.errors import FacenetError

    folder = tmp_path / "faces"
    folder.mkdir()
    for k in range(5):
        Image.new("RGB", (32, 32), (k * 40, 0, 0)).save(folder / f"{k}.png")
    save_dir = tmp_path / "logs"
    with pytest.raises(FacenetError, match=r"has 5 images, fewer than one batch of 8; use "
                                           r"--batch-size 5 \(the largest that fits\)"):
        distill(tiny_config(str(folder), save_dir))
    assert not save_dir.exists() or os.listdir(save_dir) == []


def test_the_teacher_targets_log_names_the_view_as_its_file_does(tmp_path, caplog):
    import logging

    from facenet.training.distillation import TeacherTargets

    class Renderer:
        def batches(self, idx, view, sizes):
            return [np.zeros((len(idx), size, size, 3), np.uint8) for size in sizes]

    class Teacher:
        input_shape = (8, 8, 3)

        def embed_arrays(self, batch):
            return np.ones((len(batch), 4), np.float32)

    targets = TeacherTargets(str(tmp_path / "teacher"), {"images": 3})
    with caplog.at_level(logging.INFO, logger="facenet.training.distillation"):
        targets.compute(0, Teacher(), Renderer())
    assert os.path.isfile(tmp_path / "teacher" / "view_000.npy")
    assert any(r.getMessage().startswith("Teacher targets of view 0 (view_000.npy): 3 images")
               for r in caplog.records)
