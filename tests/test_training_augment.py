"""Augmented views: each a pure function of (seed, image, view); no augmentation renders the
face box itself; a flip mirrors; every drawn value stays inside its range."""
import numpy as np
import pytest
from PIL import Image

from facenet.training.augment import NO_AUGMENTATION, Augmentation, render, view_params

BOX = (30, 10, 130, 110)  # a 100-pixel square face box


@pytest.fixture(scope="module")
def noise():
    """A 160x120 image of random pixels: any shift or resampling of it shows."""
    pixels = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    return Image.fromarray(pixels), pixels


def test_a_view_is_a_pure_function_of_seed_image_and_view():
    aug = Augmentation()
    first = view_params(aug, 3, 7, 2)
    for other in [(3, 7, 3), (3, 8, 2), (4, 7, 2), (0, 0, 0)]:
        view_params(aug, *other)  # drawing others in between changes nothing
    assert view_params(aug, 3, 7, 2) == first
    different = [view_params(aug, *key) for key in [(3, 7, 3), (3, 8, 2), (4, 7, 2)]]
    assert all(params != first for params in different)


def test_no_augmentation_renders_the_plain_crop(noise):
    image, pixels = noise
    x0, y0, x1, y1 = BOX
    plain = pixels[y0:y1, x0:x1]
    for params in (view_params(Augmentation(), 0, 5, -1),  # the plain view of any setting
                   view_params(NO_AUGMENTATION, 9, 5, 3)):
        np.testing.assert_array_equal(render(image, BOX, params, 100), plain)


def test_a_flip_mirrors_the_view(noise):
    image, _ = noise
    params = view_params(Augmentation(flip=0.0, blur=0.0, greyscale=0.0), 1, 2, 3)
    assert params["flip"] is False
    view = render(image, BOX, params, 64)
    mirrored = render(image, BOX, {**params, "flip": True}, 64)
    np.testing.assert_array_equal(mirrored, view[:, ::-1])
    assert not np.array_equal(mirrored, view)


def test_every_draw_stays_inside_its_range():
    aug = Augmentation(scale=(0.9, 1.1), rotation=5.0, shift=0.02, flip=0.5, brightness=0.1,
                       contrast=0.2, saturation=0.05, greyscale=0.5, blur=0.5,
                       blur_sigma=(0.7, 0.9))
    draws = [view_params(aug, 0, i, v) for i in range(100) for v in range(4)]

    def values(key):
        return np.array([d[key] for d in draws], dtype=float)

    for key, low, high in [("scale", 0.9, 1.1), ("angle", -5.0, 5.0), ("dx", -0.02, 0.02),
                           ("dy", -0.02, 0.02), ("brightness", 0.9, 1.1),
                           ("contrast", 0.8, 1.2), ("saturation", 0.95, 1.05)]:
        v = values(key)
        assert low <= v.min() and v.max() <= high, key
        assert v.max() - v.min() > 0.8 * (high - low), f"{key} does not fill its range"
    blurs = values("blur")
    assert ((blurs == 0) | ((0.7 <= blurs) & (blurs <= 0.9))).all()
    for key in ("flip", "grey"):
        assert 0.35 < values(key).mean() < 0.65, key  # probability 0.5 over 400 draws
    assert 0.35 < (blurs > 0).mean() < 0.65


def test_probabilities_of_zero_and_one_are_never_and_always():
    never = Augmentation(flip=0.0, greyscale=0.0, blur=0.0)
    always = Augmentation(flip=1.0, greyscale=1.0, blur=1.0)
    for i in range(50):
        n, a = view_params(never, 0, i, 0), view_params(always, 0, i, 0)
        assert (n["flip"], n["grey"], n["blur"]) == (False, False, 0.0)
        assert a["flip"] and a["grey"] and a["blur"] > 0


@pytest.mark.parametrize("settings,message", [
    (dict(scale=(1.1, 0.9)), "scale must be 0 < low <= high"),
    (dict(flip=1.5), "flip is a probability"),
    (dict(rotation=-1.0), "rotation must be >= 0"),
])
def test_impossible_ranges_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        Augmentation(**settings)
