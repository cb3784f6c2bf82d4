"""The training input's pieces: the held-out split, triplet sampling limits, jittered boxes and
the image loader's flips and fallbacks (the whole pipeline runs in test_training.py)."""
import numpy as np
import pytest
from PIL import Image

from utils.annotation import AnnotationError
from utils.dataloader import (TripletImageLoader, TripletSampler, check_batch_size, jitter_box,
                              split_lines, triplet_dataset)
from utils.errors import ImageLoadError


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
    assert jitter_box(crop, 1.0, 0.0, 0.0) is crop
    assert jitter_box(None, 0.5, 0.0, 1.0) == (0.0, 0.5, 0.5, 1.0)
    assert jitter_box(crop, 0.5, 0.5, 0.5) == pytest.approx((0.3, 0.35, 0.5, 0.65))


@pytest.fixture
def photos(tmp_path):
    paths = []
    for name in ("a", "b", "c"):
        image = np.zeros((32, 32, 3), np.uint8)
        image[:, :16] = 255  # left half white: a flip moves it right
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    return paths


def test_the_loader_flips_on_request(photos):
    loader = TripletImageLoader(photos, [0, 0, 1], (32, 32, 3))
    plain, flipped = loader(0, False), loader(0, True)
    assert plain[:, :16].min() == 255 and flipped[:, 16:].min() == 255
    np.testing.assert_array_equal(flipped, plain[:, ::-1])


def test_a_person_with_no_readable_image_left_is_named(photos):
    for path in photos[:2]:
        open(path, "w").write("not a png")
    messages = []
    loader = TripletImageLoader(photos, [0, 0, 1], (32, 32, 3), log=messages.append)
    with pytest.raises(ImageLoadError, match="no readable image left for class 0"):
        loader(1, False)
    assert len(messages) == 2 and loader(2, False).shape == (32, 32, 3)
