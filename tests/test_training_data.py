"""The training input at scale: triplets drawn per epoch from (seed, epoch), decoding as
TensorFlow ops with PIL as the fallback, and the same pixels as prediction."""
import logging
import os

import numpy as np
import pytest

from utils.annotation import AnnotationError
from facenet.training.data import (TrainingImages, TripletSampler, check_batch_size,
                                   jitter_box, letterboxed_batches, split_lines,
                                   triplet_dataset, triplet_plan)


def noise_images(folder, classes=4, per_class=3):
    """(paths, labels): JPEGs of random pixels and sizes, so that a flip or a crop shows."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths, labels = [], []
    for c in range(classes):
        for i in range(per_class):
            shape = (rng.integers(40, 70), rng.integers(40, 70), 3)
            path = os.path.join(folder, f"c{c}_{i}.jpg")
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
            paths.append(path)
            labels.append(c)
    return paths, labels


def test_resumed_run_sees_the_batches_of_the_uninterrupted_run(tmp_path):
    """Epoch 3 of a run (epochs 0, 1, 2), fresh against resumed after epoch 2: same indices,
    flips, jitters and pixels."""
    paths, labels = noise_images(tmp_path)
    steps, batch, settings = 2, 6, dict(augment=True, crop=(0.1, 0.1, 0.9, 0.9), crop_jitter=0.3)
    sampler = TripletSampler(labels, seed=5)
    whole = list(triplet_plan(sampler, steps, batch, 3, 0, **settings).as_numpy_iterator())
    resumed = list(triplet_plan(sampler, steps, batch, 3, 2, **settings).as_numpy_iterator())
    assert len(whole) == 3 * steps * batch and len(resumed) == steps * batch
    for (i1, f1, b1), (i2, f2, b2) in zip(whole[2 * steps * batch:], resumed):
        assert i1 == i2 and f1 == f2 and (b1 == b2).all()
    assert len({f for _, f, _ in resumed}) == 2  # flips on and off: the test sees them

    def batches(first_epoch):
        ds = triplet_dataset(paths, labels, 4, (32, 32, 3), batch, steps, 3, first_epoch, seed=5,
                             **settings)
        return [x.numpy() for x, _ in ds]

    fresh, after = batches(0), batches(2)
    assert len(fresh) == 3 * steps and len(after) == steps
    for x1, x2 in zip(fresh[2 * steps:], after):
        np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(fresh[steps], after[0])  # epoch 2 is not epoch 3


def test_nothing_is_drawn_up_front_whatever_the_epochs(tmp_path, monkeypatch):
    """Building the dataset draws no epoch; each is drawn once the pipeline reaches it."""
    paths, labels = noise_images(tmp_path)
    drawn = []
    epoch = TripletSampler.epoch
    monkeypatch.setattr(TripletSampler, "epoch",
                        lambda self, e, *a: drawn.append(e) or epoch(self, e, *a))
    for epochs in (1, 1000):
        ds = triplet_dataset(paths, labels, 4, (32, 32, 3), 6, 2, epochs)
        assert drawn == []
    batches = iter(ds)
    for _ in range(5):  # steps 0-1 of epoch 0, 0-1 of epoch 1, 0 of epoch 2
        next(batches)
    assert drawn[:3] == [0, 1, 2] and len(drawn) < 1000


def test_sampler_draws_every_pair_uniformly():
    """The offset draws (another image, another class) reach each choice equally often."""
    labels = np.repeat([7, 3, 11, 5], [4, 2, 3, 1])  # unsorted, sparse class ids
    anchors, positives, negatives = TripletSampler(labels, seed=1).triplets(
        np.random.default_rng(0), 60000)
    assert (labels[anchors] == labels[positives]).all() and (anchors != positives).all()
    assert (labels[negatives] != labels[anchors]).all()
    assert not np.isin(anchors, np.flatnonzero(labels == 5)).any()  # a lone image: no anchor
    seven = anchors[labels[anchors] == 7]
    share = np.bincount(positives[labels[anchors] == 7][seven == 0], minlength=4)[1:4]
    np.testing.assert_allclose(share / share.sum(), 1 / 3, atol=0.03)  # 3 others, each 1/3
    neg = labels[negatives[labels[anchors] == 3]]
    np.testing.assert_allclose([np.mean(neg == c) for c in (5, 7, 11)], 1 / 3, atol=0.03)
    np.testing.assert_allclose(np.bincount(labels[anchors])[[3, 7, 11]] / len(anchors), 1 / 3,
                               atol=0.02)  # classes with 2 or more images, each equally


def formats(folder):
    """One small image per format and mode that training may meet: path -> graph decodable?"""
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: PIL turns it upright
    cases = {"plain.jpg": (Image.fromarray(rgb), {}, True),
             "grey.jpg": (Image.fromarray(rgb[..., 0]), {}, True),
             "plain.png": (Image.fromarray(rgb), {}, True),
             "grey.png": (Image.fromarray(rgb[..., 0]), {}, True),
             "rgba.png": (Image.fromarray(np.dstack([rgb, rgb[..., :1]])), {}, False),
             "palette.png": (Image.fromarray(rgb).convert("P"), {}, False),
             "grey16.png": (Image.fromarray(rgb[..., 0].astype(np.uint16) * 250), {}, False),
             "cmyk.jpg": (Image.fromarray(rgb).convert("CMYK"), {}, False),
             "rotated.jpg": (Image.fromarray(rgb), {"exif": exif}, False),
             "image.gif": (Image.fromarray(rgb), {}, False),
             "image.bmp": (Image.fromarray(rgb), {}, False)}
    out = {}
    for name, (image, kw, graph) in cases.items():
        image.save(os.path.join(folder, name), **kw)
        out[os.path.join(folder, name)] = graph
    return out


def test_graph_decodes_plain_jpeg_and_png_and_pil_the_rest_to_the_same_pixels(tmp_path,
                                                                              monkeypatch):
    import tensorflow as tf

    from facenet.training.data import PilDecoder
    from utils.image import load_image

    cases = formats(tmp_path)
    paths = list(cases)
    by_pil = []
    call = PilDecoder.__call__
    monkeypatch.setattr(PilDecoder, "__call__",
                        lambda self, i: by_pil.append(paths[int(i)]) or call(self, i))
    n = len(paths)
    plan = tf.data.Dataset.from_tensor_slices((np.arange(n), np.zeros(n, bool), np.zeros((n, 4))))
    careful = TrainingImages(paths, range(n)).image_by_image(plan)
    for (image, index, _, _), path in zip(careful, paths):
        assert index == paths.index(path)
        np.testing.assert_array_equal(image.numpy(), np.asarray(load_image(path)), err_msg=path)
    assert sorted(by_pil) == sorted(p for p, graph in cases.items() if not graph)


def count_careful_images(monkeypatch):
    """A list that grows by one per image the careful, image-by-image path decodes."""
    import tensorflow as tf

    from facenet.training.data import TrainingImages

    seen, careful = [], TrainingImages.image_by_image

    def counted(self, plan):
        def count(image, *rest):
            tick = tf.numpy_function(lambda: seen.append(1) or np.int64(0), [], tf.int64)
            with tf.control_dependencies([tick]):
                return (tf.identity(image), *rest)
        return careful(self, plan).map(count)
    monkeypatch.setattr(TrainingImages, "image_by_image", counted)
    return seen


def test_the_batch_path_sends_other_formats_to_pil_by_their_header(tmp_path, monkeypatch):
    """Every format in one batch: the plain map decodes it (PIL only for what the graph does
    not decode to PIL's pixels, once each), without the careful image-by-image pass."""
    import tensorflow as tf

    from facenet.training.data import PilDecoder
    from utils.image import load_image
    from utils.tf_preprocessing import letterbox_tf

    cases = formats(tmp_path)
    paths = list(cases)
    by_pil, careful = [], count_careful_images(monkeypatch)
    call = PilDecoder.__call__
    monkeypatch.setattr(PilDecoder, "__call__",
                        lambda self, i: by_pil.append(paths[int(i)]) or call(self, i))
    n = len(paths)
    plan = tf.data.Dataset.from_tensor_slices(
        (np.arange(n), np.arange(n) % 2 == 1, np.tile([0.0, 0.0, 1.0, 1.0], (n, 1))))
    [(images, indices, flips)] = list(letterboxed_batches(plan, paths, range(n), n, (24, 24)))
    for image, index, path in zip(images.numpy(), indices.numpy(), paths):
        assert index == paths.index(path)
        expected = letterbox_tf(np.asarray(load_image(path)), (24, 24)).numpy()
        np.testing.assert_array_equal(image, expected, err_msg=path)
    np.testing.assert_array_equal(flips, np.arange(n) % 2 == 1)
    assert sorted(by_pil) == sorted(p for p, graph in cases.items() if not graph)
    assert careful == []


@pytest.mark.parametrize("damage", ["cut", "gone"])
def test_a_cut_or_vanished_photo_is_replaced_and_the_rest_keep_their_pixels(
        tmp_path, monkeypatch, caplog, damage):
    """A JPEG cut short (no end marker) goes to PIL by its last bytes, in the plain map; a file
    deleted after the start fails in the graph, and its batches are made again image by image.
    Either way another photo of the person takes its place (one warning), and every other image
    keeps the pixels of a run without the damage."""
    paths, labels = noise_images(tmp_path, classes=8)
    settings = dict(num_classes=8, input_shape=(32, 32, 3), batch_size=6, steps=8, epochs=1,
                    seed=2)
    clean = [x.numpy() for x, _ in triplet_dataset(paths, labels, **settings)]
    careful = count_careful_images(monkeypatch)
    damaged = triplet_dataset(paths, labels, **settings)
    if damage == "gone":
        os.remove(paths[0])
    else:
        with open(paths[0], "rb") as f:
            data = f.read()
        with open(paths[0], "wb") as f:
            f.write(data[:len(data) // 2])
    damaged = [x.numpy() for x, _ in damaged]
    order = TripletSampler(labels, seed=2).epoch(0, 8, 6).reshape(8, 6)
    hit = (order == 0).any(axis=1)
    assert hit.any() and not hit.all()  # the test's premise: some batches hold it, some do not
    assert len(careful) == (6 * hit.sum() if damage == "gone" else 0)
    for b in range(8):
        keep = order[b] != 0
        np.testing.assert_array_equal(damaged[b][keep], clean[b][keep])
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and "c0_0.jpg" in messages[0], messages


def test_missing_file_is_replaced_by_another_of_the_person_with_one_warning(tmp_path,
                                                                            caplog):
    paths, labels = noise_images(tmp_path, classes=2)
    os.remove(paths[0])
    ds = triplet_dataset(paths, labels, 2, (32, 32, 3), 6, steps=8, epochs=1, seed=2)
    assert len([x for x, _ in ds]) == 8
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and "c0_0.jpg" in messages[0] and "not found" in messages[0]


@pytest.mark.parametrize("crop", ["lfw", "none"])
def test_training_sees_the_pixels_prediction_sees(lfw, crop):
    """Real LFW photos through the training pipeline against utils.image.prepare_image. The
    decoders agree to the bit (both libjpeg's islow DCT); the resize does not quite: PIL's
    BICUBIC works in fixed point, tf.image.resize (bicubic, antialiased) in float32, so pixels
    differ by rounding, and a little more where the 250 px photo shrinks to 160 px, at sharp
    edges. Measured on these 96 images: mean 0.18 / 0.14 grey levels, max 4 / 9 (lfw / none);
    the bounds sit just above (bilinear instead of bicubic: mean 0.5-0.8, max 20-25)."""
    from utils.image import parse_crop, prepare_image

    lfw_dir, _ = lfw
    folders = [os.path.join(lfw_dir, p) for p in sorted(os.listdir(lfw_dir))]
    people = [p for p in folders if os.path.isdir(p) and len(os.listdir(p)) >= 2][:40]
    paths, labels = [], []
    for c, person in enumerate(people):
        for name in sorted(os.listdir(person))[:3]:
            paths.append(os.path.join(person, name))
            labels.append(c)
    box = parse_crop(crop)
    steps, batch = 8, 12
    ds = triplet_dataset(paths, labels, len(people), (160, 160, 3), batch, steps, 1, seed=4,
                         augment=False, crop=box)
    order = TripletSampler(labels, seed=4).epoch(0, steps, batch)
    graph = np.concatenate([x.numpy() for x, _ in ds]) * 255.0
    pil = np.stack([prepare_image(paths[i], (160, 160, 3), True, box) for i in order])
    diff = np.abs(np.round(graph) - pil)
    assert diff.mean() < 0.25 and diff.max() <= 10, (diff.mean(), diff.max())


def test_the_split_is_fixed_by_the_originals_seed_and_holds_out_at_least_one():
    entries = [(i % 7, f"{i}.jpg") for i in range(250)]
    train, val = split_lines(entries, 0.01)
    assert len(val) == 2 and sorted(train + val) == sorted(entries)
    assert split_lines(entries, 0.01) == (train, val)
    assert len(split_lines(entries[:50], 0.01)[1]) == 1  # int(0.5) would hold out none
    kept, none = split_lines(entries, 0.0)
    assert none == [] and len(kept) == 250


@pytest.mark.parametrize("labels,counts", [([0, 0, 0], "1 classes, 1 with"),
                                           ([0, 1, 2], "3 classes, 0 with")])
def test_labels_that_cannot_make_a_triplet_are_refused(labels, counts):
    with pytest.raises(AnnotationError, match=counts):
        TripletSampler(labels)


def test_anchors_come_only_from_the_given_images():
    labels = np.repeat(np.arange(4), 4)
    held_out = [0, 5]
    batch = TripletSampler(labels, anchor_indices=held_out).epoch(0, steps=10, batch_size=30)
    anchors, positives, _ = batch.reshape(10, 3, 10).transpose(1, 0, 2)
    assert set(anchors.ravel()) <= set(held_out)
    assert not set(positives.ravel()) <= set(held_out)  # positives come from every image


def test_batch_sizes_must_be_whole_triplets():
    check_batch_size(3)
    for bad in (0, 4, 10):
        with pytest.raises(ValueError, match=f"multiple of 3.*got {bad}"):
            check_batch_size(bad)
    with pytest.raises(ValueError, match=r"crop_jitter must be in \[0, 1\)"):
        triplet_dataset(["a"] * 4, [0, 0, 1, 1], 2, (32, 32, 3), 3, 1, 1, crop_jitter=1.0)


def test_jitter_box_scales_and_places_the_face_box():
    crop = (0.2, 0.2, 0.6, 0.8)
    assert jitter_box(crop, 1.0, 0.0, 0.0) == crop  # the face box itself, to the bit
    assert jitter_box(None, 0.5, 0.0, 1.0) == (0.0, 0.5, 0.5, 1.0)
    assert jitter_box(crop, 0.5, 0.5, 0.5) == pytest.approx((0.3, 0.35, 0.5, 0.65))
