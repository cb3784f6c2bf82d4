"""Training: the triplet pipeline, an end-to-end run on real LFW faces, and resuming it."""
import json
import logging
import os

import numpy as np
import pytest

from conftest import run_script
from facenet.training.data import TripletSampler, triplet_dataset


def make_dataset(lfw_dir, root, people=12, per_person=5):
    """`root/<person>/*.jpg` links to the first people of LFW with enough images."""
    n = 0
    for name in sorted(os.listdir(lfw_dir)):
        folder = os.path.join(lfw_dir, name)
        if not os.path.isdir(folder) or len(os.listdir(folder)) < per_person:
            continue
        os.makedirs(root / name)
        for f in sorted(os.listdir(folder))[:per_person]:
            os.symlink(os.path.abspath(os.path.join(folder, f)), root / name / f)
        n += 1
        if n == people:
            return root


@pytest.fixture(scope="module")
def annotation(lfw, tmp_path_factory):
    lfw_dir, _ = lfw
    tmp = tmp_path_factory.mktemp("faces")
    make_dataset(lfw_dir, tmp / "dataset")
    out = tmp / "cls_train.txt"
    r = run_script(["txt_annotation.py", "--datasets-path", str(tmp / "dataset"), "--output",
                    str(out), "--absolute"])
    assert r.returncode == 0, r.stderr
    assert "12 classes, 60 images" in r.stdout
    return str(out)


def test_sampler_triplets_are_valid_and_reproducible():
    labels = np.repeat(np.arange(6), [1, 2, 3, 4, 5, 6])
    a = TripletSampler(labels, seed=3).epoch(0, steps=20, batch_size=30)
    b = TripletSampler(labels, seed=3).epoch(0, steps=20, batch_size=30)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, TripletSampler(labels, seed=3).epoch(1, 20, 30))
    for batch in a.reshape(20, 3, 10):
        anchors, positives, negatives = batch
        assert (labels[anchors] == labels[positives]).all()
        assert (anchors != positives).all()  # never the same image twice
        assert (labels[negatives] != labels[anchors]).all()
        assert not np.isin(anchors, np.where(labels == 0)[0]).any()  # 1-image class: no anchor


def test_pipeline_batches_identical_for_a_seed(annotation):
    from utils.annotation import read_annotation

    entries = read_annotation(annotation)
    paths, labels = [p for _, p in entries], [c for c, _ in entries]

    def batches(seed):
        ds = triplet_dataset(paths, labels, 12, (64, 64, 3), 12, steps=2, epochs=1, seed=seed)
        return [(x.numpy(), y[0].numpy()) for x, y in ds]

    first, again, other = batches(7), batches(7), batches(8)
    assert len(first) == 2 and first[0][0].shape == (12, 64, 64, 3)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0], other[0][0])
    y = first[0][1].argmax(1)
    assert (y[:4] == y[4:8]).all() and (y[:4] != y[8:]).all()
    assert 0 <= first[0][0].min() and first[0][0].max() <= 1  # x / 255


def test_crop_jitter_is_a_reproducible_sub_box(annotation):
    from utils.annotation import read_annotation
    from facenet.training.data import jitter_box
    from utils.image import LFW_CROP

    assert jitter_box(LFW_CROP, 1.0, 0.0, 1.0) == LFW_CROP  # no jitter: the box itself
    for scale, x, y in [(0.85, 0, 0), (0.85, 1, 1), (0.9, 0.3, 0.7)]:
        x0, y0, x1, y1 = jitter_box(LFW_CROP, scale, x, y)
        assert LFW_CROP[0] - 1e-9 <= x0 < x1 <= LFW_CROP[2] + 1e-9
        assert LFW_CROP[1] - 1e-9 <= y0 < y1 <= LFW_CROP[3] + 1e-9
        assert x1 - x0 == pytest.approx(scale * (LFW_CROP[2] - LFW_CROP[0]))
    assert jitter_box(None, 0.8, 0.5, 0.5) == pytest.approx((0.1, 0.1, 0.9, 0.9))

    entries = read_annotation(annotation)
    paths, labels = [p for _, p in entries], [c for c, _ in entries]

    def first(jitter, augment=True):
        ds = triplet_dataset(paths, labels, 12, (32, 32, 3), 12, steps=1, epochs=1, seed=3,
                             augment=augment, crop_jitter=jitter)
        return next(iter(ds))[0].numpy()

    plain, jittered = first(0.0), first(0.2)
    np.testing.assert_array_equal(jittered, first(0.2))
    assert not np.array_equal(plain, jittered)
    np.testing.assert_array_equal(first(0.2, augment=False), first(0.0, augment=False))
    with pytest.raises(ValueError, match="crop_jitter"):
        first(1.5)


def test_train_two_epochs_then_resume_a_third(annotation, lfw, tmp_path):
    from facenet.training import TrainConfig, train
    from nets.schedules import fit_learning_rates, get_lr_scheduler

    lfw_dir, pairs = lfw
    small_pairs = tmp_path / "pairs.txt"
    lines = open(pairs).read().splitlines()[1:]
    small_pairs.write_text("\n".join(["1 10"] + lines[:10] + lines[300:310]) + "\n")
    cfg = TrainConfig(annotation_path=annotation, input_shape=(64, 64, 3), epochs=2,
                      batch_size=12, save_dir=str(tmp_path / "logs"), val_split=0.1,
                      lfw_dir=lfw_dir, lfw_pairs=str(small_pairs), lfw_crop="lfw", crop="lfw",
                      verbose=0)
    run_dir, history, model = train(cfg)
    steps = 54 // 12
    names = set(os.listdir(run_dir))
    for name in ("epoch_loss.txt", "epoch_val_loss.txt", "epoch_loss.png", "tensorboard",
                 "last_epoch_weights.weights.h5", "best_epoch_weights.weights.h5", "resume.json"):
        assert name in names
    assert len([n for n in names if n.startswith("ep00") and n.endswith(".weights.h5")]) == 2
    assert any(f.startswith("events.out") for _, _, fs in os.walk(os.path.join(run_dir, "tensorboard")) for f in fs)
    losses = [float(v) for v in open(os.path.join(run_dir, "epoch_loss.txt"))]
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert all(0 <= v <= 1 for v in history["lfw"])
    assert int(model.optimizer.iterations) == 2 * steps

    cfg3 = TrainConfig(resume=run_dir, epochs=3, verbose=0)
    run_dir3, history3, model3 = train(cfg3)
    assert run_dir3 == run_dir and len(history3["loss"]) == 3
    assert history3["loss"][:2] == pytest.approx(losses)
    assert int(model3.optimizer.iterations) == 3 * steps  # the optimizer state came back
    init_lr, min_lr = fit_learning_rates(12, 1e-3, 1e-5, "adam")
    assert history3["lr"][2] == pytest.approx(get_lr_scheduler("cos", init_lr, min_lr, 3)(2),
                                              rel=1e-5)
    state = json.load(open(os.path.join(run_dir, "resume.json")))
    assert state["state"].endswith("epoch_003")
    assert len(open(os.path.join(run_dir, "epoch_val_loss.txt")).readlines()) == 3


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "10"], "multiple of 3"), (["--optimizer", "rmsprop"], "invalid choice"),
    (["--lr-decay-type", "linear"], "invalid choice"), (["--init-lr", "-1"], "positive"),
    (["--backbone", "inception_resnetv1", "--input-shape", "64", "64", "3"], "at least 75")])
def test_bad_settings_rejected_at_start(args, message, tmp_path):
    r = run_script(["train.py", "--annotation-path", str(tmp_path / "none.txt"), *args])
    assert r.returncode != 0 and message in r.stderr


def test_annotation_errors(tmp_path):
    bad = tmp_path / "cls.txt"
    bad.write_text("0;a.jpg\nnot a line\n")
    r = run_script(["train.py", "--annotation-path", str(bad)])
    assert r.returncode != 0 and "cls.txt:2:" in r.stderr


def test_replica_slices_are_triplet_batches(annotation):
    """Under a distribution strategy each replica's slice must itself be [a; p; n]."""
    from utils.annotation import read_annotation

    entries = read_annotation(annotation)
    paths, labels = [p for _, p in entries], [c for c, _ in entries]
    ds = triplet_dataset(paths, labels, 12, (32, 32, 3), 12, steps=1, epochs=1, replicas=2)
    y = next(iter(ds))[1][0].numpy().argmax(1)
    for part in (y[:6], y[6:]):
        assert (part[:2] == part[2:4]).all() and (part[:2] != part[4:]).all()
    with pytest.raises(ValueError, match="3 x 2 replicas"):
        triplet_dataset(paths, labels, 12, (32, 32, 3), 9, steps=1, epochs=1, replicas=2)


def test_unreadable_training_image_is_skipped_with_one_warning(tmp_path, caplog):
    from PIL import Image

    paths, labels = [], []
    for c in range(3):
        for i in range(3):
            path = tmp_path / f"c{c}_{i}.jpg"
            Image.new("RGB", (40, 50), (80 * c, 10 * i, 0)).save(path)
            paths.append(str(path))
            labels.append(c)
    (tmp_path / "c0_0.jpg").write_text("not a jpeg")
    ds = triplet_dataset(paths, labels, 3, (32, 32, 3), 9, steps=6, epochs=1, seed=1)
    batches = [x.numpy() for x, _ in ds]
    assert len(batches) == 6 and all(np.isfinite(b).all() for b in batches)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and "c0_0.jpg" in messages[0]


def test_precise_batchnorm_sets_population_statistics():
    import keras
    import tensorflow as tf

    from nets.facenet import facenet
    from facenet.training.callbacks import PreciseBatchNorm

    model = facenet((32, 32, 3), num_classes=4, backbone="mobilenet")
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 1, (6, 32, 32, 3)).astype("float32") for _ in range(2)]
    ds = tf.data.Dataset.from_tensor_slices(np.stack(batches)).map(lambda x: (x, 0))
    embed = keras.Model(model.input, model.get_layer("Embedding").output)
    before = embed(batches[0], training=False).numpy()
    assert np.linalg.norm(before[0] - before[1]) < 1e-3  # fresh statistics collapse (design.md)
    callback = PreciseBatchNorm(ds, batches=2)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0)
    conv1 = keras.Model(model.input, model.get_layer("conv1").output)
    outs = np.concatenate([conv1(b).numpy().reshape(-1, 32) for b in batches])
    bn = model.get_layer("conv1_bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), outs.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), outs.var(0), rtol=1e-3, atol=1e-7)
    after = embed(batches[0], training=False).numpy()
    assert np.linalg.norm(after[0] - after[1]) > 0.05  # faces no longer map to one point
    assert model.get_layer("Dropout").rate == 0.5  # restored


def test_weight_decay_regularises_every_kernel():
    from facenet.training import TrainConfig
    from facenet.training.loop import build_model

    plain = build_model(TrainConfig(input_shape=(32, 32, 3)), 4)
    decayed = build_model(TrainConfig(input_shape=(32, 32, 3), weight_decay=5e-4), 4)
    assert plain.losses == []
    # 14 convolutions, 13 depthwise, Bottleneck and Logits: one L2 term each
    assert len(decayed.losses) == 14 + 13 + 2


def test_resume_keeps_the_runs_own_epochs_unless_given():
    import train

    assert train.parse_args([]).epochs == 100
    assert train.parse_args(["--resume", "logs/x"]).epochs is None
    assert train.parse_args(["--resume", "logs/x", "--epochs", "7"]).epochs == 7



def test_the_per_epoch_lfw_check_decodes_once_and_follows_the_weights(lfw, tmp_path,
                                                                      monkeypatch):
    """The check keeps the decoded crops between epochs and reuses its forward graph, yet
    embeds with the model's current weights, as a fresh predictor does."""
    import facenet.evaluation as evaluation
    import facenet.preparation as preparation
    from facenet.evaluation import embed_distinct, score_pairs
    from facenet.predictor import Facenet
    from facenet.training import TrainConfig
    from nets.facenet import embedding_model, facenet

    lines = open(lfw[1]).read().splitlines()
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("\n".join(["1\t6"] + lines[1:7] + lines[301:307]) + "\n")
    cfg = TrainConfig(input_shape=(64, 64, 3), lfw_dir=lfw[0], lfw_pairs=str(pairs_file),
                      lfw_crop="lfw")
    opened, tables = [], []
    real_batches = preparation.iter_batches

    def recording(items, *a, **k):
        items = list(items)  # paths, or (index, path) pairs
        opened.extend(i[-1] if isinstance(i, tuple) else i for i in items)
        return real_batches(items, *a, **k)

    monkeypatch.setattr(preparation, "iter_batches", recording)
    monkeypatch.setattr(evaluation, "score_pairs", lambda table, pairs: tables.append(table)
                        or score_pairs(table, pairs))
    from facenet.training.loop import make_lfw_eval

    check = make_lfw_eval(cfg, "standardize")
    model = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        for w in model.trainable_weights:
            w.assign(rng.normal(0, 0.1, w.shape).astype("float32"))
        check(model)
    read_by_check = list(opened)
    paths = list(tables[0])
    assert sorted(read_by_check) == sorted(paths)  # each photo read once over two checks
    fresh = embed_distinct(Facenet.from_keras(embedding_model(model), "standardize", "lfw"),
                           paths, progress=False)
    assert np.allclose(np.stack([tables[1][p] for p in paths]),
                       np.stack([fresh[p] for p in paths]), atol=1e-5)
    assert not np.allclose(np.stack(list(tables[0].values())),
                           np.stack(list(tables[1].values())), atol=1e-3)
