"""Bad input ends in a clear message, and the work goes on where it sensibly can."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from conftest import LFW_DIR, run_script
from utils.errors import ImageLoadError
from utils.image import load_image, prepare_image

REAL_JPEG = os.path.join(LFW_DIR, "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")


def jpeg_bytes():
    if os.path.exists(REAL_JPEG):
        return open(REAL_JPEG, "rb").read()
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, format="JPEG")
    return buf.getvalue()


def test_tiny_huge_gif_and_truncated_images(tmp_path):
    Image.new("RGB", (1, 1), (9, 9, 9)).save(tmp_path / "one.png")
    assert prepare_image(str(tmp_path / "one.png"), (160, 160, 3)).shape == (160, 160, 3)
    Image.new("L", (8000, 8000), 200).save(tmp_path / "huge.jpg", quality=50)
    assert prepare_image(str(tmp_path / "huge.jpg"), (160, 160, 3)).shape == (160, 160, 3)
    frames = [Image.new("P", (30, 20), i) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert load_image(str(tmp_path / "anim.gif")).size == (30, 20)
    data = jpeg_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.jpg"):
        load_image(str(tmp_path / "cut.jpg"))
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(str(tmp_path))


def test_fuzz_image_loader(tmp_path):
    """Random bytes and mutated real JPEGs either load or raise ImageLoadError, nothing else."""
    rng = np.random.default_rng(1234)
    original = jpeg_bytes()
    loaded = refused = 0
    for k in range(300):
        if k < 100:
            data = rng.integers(0, 256, rng.integers(0, 2000), dtype=np.uint8).tobytes()
        else:
            data = bytearray(original)
            for _ in range(rng.integers(1, 20)):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
            if k % 3 == 0:
                data = data[: rng.integers(1, len(data))]
            data = bytes(data)
        path = tmp_path / f"f{k}.jpg"
        path.write_bytes(data)
        try:
            prepare_image(str(path), (32, 32, 3))
            loaded += 1
        except ImageLoadError as e:
            assert f"f{k}.jpg" in str(e)
            refused += 1
    assert loaded + refused == 300 and refused >= 100  # every random byte string is refused
    print(f"fuzz: {loaded} loaded, {refused} refused cleanly")


def test_txt_annotation_leaves_out_unreadable_files(tmp_path):
    for person in ("a", "b"):
        (tmp_path / "d" / person).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / "d" / person / f"{i}.jpg")
    (tmp_path / "d" / "a" / "broken.jpg").write_bytes(b"")
    out = tmp_path / "cls.txt"
    r = run_script(["txt_annotation.py", "--datasets-path", str(tmp_path / "d"), "--output",
                    str(out)])
    assert r.returncode == 0 and "broken.jpg" in r.stderr and "2 classes, 4 images" in r.stdout
    assert "broken" not in out.read_text()


@pytest.mark.slow
def test_predict_names_the_unreadable_file(tmp_path):
    """A real (tiny) model with its card, so predict.py gets as far as reading the images."""
    import json

    from nets.facenet import facenet

    model_path = tmp_path / "tiny.weights.h5"
    facenet((32, 32, 3), backbone="mobilenet", mode="predict").save_weights(str(model_path))
    (tmp_path / "tiny.json").write_text(json.dumps(
        {"backbone": "mobilenet", "input_shape": [32, 32, 3], "preprocessing": "scale01",
         "threshold": 1.1}))
    good = tmp_path / "good.png"
    Image.new("RGB", (32, 32), (120, 90, 60)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    r = run_script(["predict.py", str(good), str(bad), "--model-path", str(model_path),
                    "--out", ""])
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(bad) in last and "good.png" not in last


@pytest.mark.slow
def test_training_data_problems_are_caught_before_the_model(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    one_class = tmp_path / "one.txt"
    one_class.write_text(f"0;{tmp_path / 'x.png'}\n0;{tmp_path / 'x.png'}\n")
    r = run_script(["train.py", "--annotation-path", str(one_class), "--save-dir",
                    str(tmp_path / "logs")])
    assert r.returncode != 0 and "at least 2 classes" in r.stderr
    gone = tmp_path / "gone.txt"
    gone.write_text(f"0;{tmp_path / 'x.png'}\n1;{tmp_path / 'missing.png'}\n")
    r = run_script(["train.py", "--annotation-path", str(gone), "--save-dir",
                    str(tmp_path / "logs")])
    assert r.returncode != 0 and "missing.png" in r.stderr and "--skip-missing" in r.stderr
    r = run_script(["train.py", "--annotation-path", str(gone), "--save-dir",
                    str(tmp_path / "logs"), "--skip-missing"])
    assert "warning: skipping 1 images" in r.stderr and "at least 2 classes" in r.stderr


@pytest.mark.slow
def test_unwritable_save_dir_fails_at_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    r = run_script(["train.py", "--save-dir", str(blocker / "logs")])
    assert r.returncode != 0 and "cannot write to the save folder" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("batch", ["0", "1", "4"])
def test_batch_sizes_rejected(batch):
    r = run_script(["train.py", "--batch-size", batch])
    assert r.returncode != 0 and "multiple of 3" in r.stderr


@pytest.mark.parametrize("mode", ["off", "auto"])
def test_arrays_that_are_not_images_are_named(mode):
    """NaN pixels became an ordinary unit embedding, a string array a bare ValueError: each
    is an ImageLoadError naming the item of the list."""
    from face_stubs import fixed_prepare, stub_aligner
    from facenet.preparation import FacePreparer

    good = np.zeros((40, 40, 3), np.uint8)
    bad = {"NaN": np.full((40, 40, 3), np.nan), "inf": np.full((40, 40), np.inf, np.float32),
           "dtype <U1": np.full((40, 40, 3), "a"), "no pixels": np.zeros((0, 40, 3), np.uint8),
           "shape": np.zeros((40, 40, 7), np.uint8), "dtype object": np.array([[None]])}
    preparer = FacePreparer(fixed_prepare, stub_aligner(), mode)
    for why, array in bad.items():
        with pytest.raises(ImageLoadError, match=f"image 1 of the list.*{why}"):
            list(preparer.iter_prepared([good, array], 4))


def test_a_crop_or_image_of_no_pixels_is_a_clear_error(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    with pytest.raises(ImageLoadError, match=r"one.png: the crop 0.1,0.1,0.2,0.2 of its 1x1 "
                                             r"pixels leaves no pixel"):
        prepare_image(str(tmp_path / "one.png"), (160, 160, 3), crop=(0.1, 0.1, 0.2, 0.2))
    with pytest.raises(ImageLoadError, match="0x0, no pixels"):
        prepare_image(Image.new("RGB", (0, 0)), (160, 160, 3))
