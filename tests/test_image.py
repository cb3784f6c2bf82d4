"""Images of every mode load as RGB; letterbox and preprocessing follow the original
(docs/design.md); bad files are named."""

import numpy as np
import pytest
from PIL import Image

from utils.errors import ImageLoadError
from utils.image import letterbox, load_image, parse_crop, prepare_image, standardize


def save(tmp_path, image, name, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return str(path)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "I;16", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8))
    image = base.convert(mode) if mode != "I;16" else Image.fromarray(
        (np.arange(600).reshape(20, 30) * 100).astype(np.uint16))
    ext = "jpg" if mode in ("L", "CMYK") else "png"
    loaded = load_image(save(tmp_path, image, f"x.{ext}"))
    assert loaded.mode == "RGB" and loaded.size == (30, 20)


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    arr = np.full((4, 4), 65535, np.uint16)
    loaded = np.asarray(load_image(save(tmp_path, Image.fromarray(arr), "w.png")))
    assert loaded.min() == 255


def test_exif_orientation_is_honoured(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = save(tmp_path, image, "rot.jpg", exif=exif)
    assert load_image(path).size == (20, 40)


def test_arrays_and_pil_images(tmp_path):
    arr = np.zeros((10, 12, 3), np.uint8)
    assert load_image(arr).size == (12, 10)
    assert load_image(np.zeros((10, 12), np.float32)).mode == "RGB"
    assert load_image(Image.new("L", (5, 5))).mode == "RGB"
    with pytest.raises(ImageLoadError, match="shape"):
        load_image(np.zeros((3, 3, 7)))


@pytest.mark.parametrize("content", [b"", b"this is not an image", b"\xff\xd8\xff\xe0" + b"\0" * 50])
def test_bad_files_raise_the_library_error_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match="bad.jpg"):
        load_image(str(path))
    with pytest.raises(ImageLoadError, match="nowhere.jpg"):
        load_image(str(tmp_path / "nowhere.jpg"))


def test_letterbox_keeps_aspect_on_grey():
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    out = np.asarray(letterbox(image, (160, 160)))
    assert out.shape == (160, 160, 3)
    assert (out[:30] == 128).all() and (out[-30:] == 128).all()  # grey bars above and below
    assert (out[45:115] == 255).all()


def test_standardize_formula():
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3))
    got = standardize(x)
    for i in range(2):
        want = (x[i] - x[i].mean()) / max(x[i].std(), 1 / np.sqrt(x[i].size))
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)
    flat = standardize(np.full((1, 4, 4, 3), 7.0))  # constant image: std floor, no NaN
    assert np.isfinite(flat).all() and (flat == 0).all()


def test_crop_settings():
    assert parse_crop("none") is None and parse_crop(None) is None
    assert parse_crop("lfw") == pytest.approx((0.22, 0.232, 0.78, 0.792))
    assert parse_crop("0.1,0.1,0.9,0.9") == (0.1, 0.1, 0.9, 0.9)
    with pytest.raises(ValueError, match="x0,y0,x1,y1"):
        parse_crop("0.5,0.5,0.2,0.9")
    img = Image.fromarray(np.arange(250 * 250 * 3, dtype=np.uint32).reshape(250, 250, 3)
                          .astype(np.uint8))
    assert prepare_image(img, (160, 160, 3), crop=parse_crop("lfw")).shape == (160, 160, 3)
