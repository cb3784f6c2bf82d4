"""Huge photos: refused from their header when they could exhaust memory, else detected on a
bounded copy with boxes and landmarks carried back to the photo's own pixels."""
import os

import numpy as np
import pytest
from PIL import Image, ImageFile

from facenet.align import DETECT_MAX_SIDE, FaceDetector
from utils.errors import ImageLoadError
from utils.image import MAX_PIXELS_ENV, load_image


def test_huge_photo_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("1", (9400, 9400)).save(path)  # 88 megapixels in a small file
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)

    def decode(self):
        raise AssertionError("the photo was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    with pytest.raises(ImageLoadError) as refused:
        load_image(str(path))
    message = str(refused.value)
    for part in ("huge.png", "9400x9400", "88.4 megapixels", "64.0-megapixel limit", MAX_PIXELS_ENV):
        assert part in message, message


def test_the_limit_is_a_setting(tmp_path, monkeypatch):
    path = str(tmp_path / "small.png")
    Image.new("RGB", (20, 10)).save(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "199")
    with pytest.raises(ImageLoadError, match=r"20x10 .* limit \(199 pixels\)"):
        load_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "200")
    assert load_image(path).size == (20, 10)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ImageLoadError, match=f"{MAX_PIXELS_ENV}='lots' is not a number"):
        load_image(path)


def test_detector_runs_on_a_bounded_copy_and_maps_back(monkeypatch):
    """MTCNN gets a copy at most DETECT_MAX_SIDE long; its coordinates come back scaled."""
    image = Image.new("RGB", (4800, 3200), (90, 90, 90))
    seen = []

    def fake_run(arrays):
        seen.extend(a.shape for a in arrays)
        xs, ys = [110, 150, 130, 115, 145], [120, 120, 140, 160, 160]
        return np.array([[0, 100, 100, 160, 180, 0.99, *xs, *ys]], dtype=np.float64)

    detector = FaceDetector()
    monkeypatch.setattr(detector, "_run", fake_run)
    face, = detector.detect(image)
    assert seen == [(1067, 1600, 3)] and max(seen[0][:2]) <= DETECT_MAX_SIDE
    sx, sy = 4800 / 1600, 3200 / 1067
    np.testing.assert_allclose(face.box, (100 * sx, 100 * sy, 160 * sx, 180 * sy))
    np.testing.assert_allclose(face.landmarks[0], (110 * sx, 120 * sy))
    np.testing.assert_allclose(face.landmarks[4], (145 * sx, 160 * sy))


@pytest.mark.parametrize("name", ["Colin_Powell", "Aaron_Peirsol", "Abdullah_Gul"])
def test_landmarks_found_on_a_smaller_copy_land_on_the_face(lfw, name):
    """An LFW photo upscaled 4x, detected on a copy half that size: the landmarks, carried back,
    are where MTCNN finds them on the photo itself (within 4 of its pixels)."""
    photo = load_image(os.path.join(lfw[0], name, f"{name}_0001.jpg"))
    want = FaceDetector(max_side=None).detect(photo)[0].landmarks
    big = photo.resize((4 * photo.width, 4 * photo.height), Image.BICUBIC)
    got = FaceDetector(max_side=big.width // 2).detect(big)[0].landmarks
    assert np.abs(got / 4 - want).max() < 4, (got / 4, want)
