"""MTCNN on ONNX Runtime finds what the mtcnn package finds: its steps one by one, whole
detections on real LFW photos, and the cache of its graphs."""
import logging
import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("mtcnn", reason="the graphs are written from the mtcnn package's weights")

from facenet import mtcnn_onnx  # noqa: E402
from facenet.mtcnn_onnx import OnnxMTCNN, crop_and_resize, nms, resize_area  # noqa: E402

# LFW photos of a spread of people, a face in each.
PHOTOS = ["Colin_Powell/Colin_Powell_0001.jpg", "George_W_Bush/George_W_Bush_0013.jpg",
          "Abdullah_Gul/Abdullah_Gul_0001.jpg", "Mary_Sue_Coleman/Mary_Sue_Coleman_0001.jpg",
          "Aaron_Peirsol/Aaron_Peirsol_0002.jpg", "Serena_Williams/Serena_Williams_0003.jpg"]


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return OnnxMTCNN(cache_folder=str(tmp_path_factory.mktemp("mtcnn_onnx")))


@pytest.fixture(scope="module")
def package():
    from mtcnn import MTCNN

    return MTCNN()


def package_rows(package, images, min_face_size=20):
    rows = package.detect_faces(images if len(images) > 1 else images[0], box_format="xyxy",
                                output_type="numpy", min_face_size=min_face_size)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 16)


def test_area_resize_and_patches_are_tensorflows():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, (2, 250, 237, 3)) - 127.5) / 128
    for scale in (0.6, 0.6 * 0.709 ** 3, 0.6 * 0.709 ** 7):  # a pyramid's first, middle, last
        size = (np.array([250, 237]) * scale).astype(int)
        want = tf.image.resize(x, size, method="area").numpy()
        assert np.abs(resize_area(x, *size) - want).max() < 1e-5
    # boxes inside, across the edge, a point, one of zero width
    boxes = np.array([[10.3, -5.2, 80.7, 60.1], [100, 100, 260, 240], [0, 0, 1, 1],
                      [50.5, 60.25, 50.5, 90]]) / np.array([250, 237, 250, 237])
    index = np.array([0, 1, 1, 0])
    for size in (24, 48):
        want = tf.image.crop_and_resize(x, boxes, index, (size, size)).numpy()
        assert np.abs(crop_and_resize(x, boxes, index, size) - want).max() < 1e-6


def test_nms_drops_a_box_overlapped_by_a_dropped_one_as_the_package_does(monkeypatch):
    from mtcnn.utils.bboxes import smart_nms_from_bboxes

    # B overlaps A, C overlaps B but not A: greedy NMS would keep C, the package drops it
    chain = np.array([[0, 0, 0, 10, 10, 0.9], [0, 4, 0, 14, 10, 0.8], [0, 8, 0, 18, 10, 0.7],
                      [1, 0, 0, 10, 10, 0.5]])
    kept = nms(chain, 0.3)
    assert kept[:, [0, 5]].tolist() == [[0, 0.9], [1, 0.5]]
    assert np.array_equal(kept, smart_nms_from_bboxes(chain, 0.3))
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 200, (300, 2))
    many = np.c_[rng.integers(0, 3, 300), xy, xy + rng.uniform(5, 40, (300, 2)),
                 rng.uniform(0, 1, 300)]
    monkeypatch.setattr(mtcnn_onnx, "NMS_BLOCK", 10_000)  # several blocks of columns
    for method in ("union", "min"):
        assert np.array_equal(nms(many, 0.5, method),
                              smart_nms_from_bboxes(many, 0.5, method=method))


def test_detections_on_lfw_photos_are_the_packages(lfw, detector, package):
    """The same faces, boxes and landmarks to well under a pixel: one photo at a time, and
    three as one batch (against the package on each photo alone: its own batches are not
    what it finds alone, see the next test)."""
    lfw_dir, _ = lfw
    images = [np.asarray(Image.open(os.path.join(lfw_dir, p)).convert("RGB")) for p in PHOTOS]
    batches = [[im] for im in images] + [images[:3]]
    faces = 0
    for batch in batches:
        want = [package_rows(package, [im]) for im in batch]
        for j, rows in enumerate(want):
            rows[:, 0] = j
        want, got = np.concatenate(want), detector.detect(batch)
        assert got.shape == want.shape
        faces += len(got)
        assert np.abs(got[:, 1:5] - want[:, 1:5]).max() < 0.01  # boxes, pixels
        assert np.abs(got[:, 6:] - want[:, 6:]).max() < 0.01  # landmarks, pixels
        assert np.abs(got[:, 5] - want[:, 5]).max() < 1e-4  # confidences
        assert np.array_equal(got[:, 0], want[:, 0])  # which image
    assert faces >= len(PHOTOS) + 3  # a face in each photo, each time


# Edward Seaga's photo has PNet boxes tied at a score of 1.0; which of them NMS keeps must not
# depend on the photos batched before it.
TIED = "Edward_Seaga/Edward_Seaga_0001.jpg"
BEFORE = ["Asif_Hanif/Asif_Hanif_0001.jpg", "Askar_Akayev/Askar_Akayev_0001.jpg",
          "Asmaa_Assad/Asmaa_Assad_0001.jpg", "Assad_Ahmadi/Assad_Ahmadi_0001.jpg",
          "Astou_Ndiaye-Diatta/Astou_Ndiaye-Diatta_0001.jpg"]


def test_a_photo_gets_the_same_face_alone_and_in_a_batch(lfw, detector):
    lfw_dir, _ = lfw
    images = [np.asarray(Image.open(os.path.join(lfw_dir, p)).convert("RGB"))
              for p in BEFORE + [TIED]]
    alone = detector.detect(images[-1:])
    batched = detector.detect(images)
    mine = batched[batched[:, 0] == len(BEFORE)]
    assert len(alone) == len(mine) == 1
    assert np.array_equal(alone[:, 1:], mine[:, 1:])  # bit for bit
    for j, image in enumerate(images[:-1]):  # and the others, likewise
        assert np.array_equal(detector.detect([image])[:, 1:], batched[batched[:, 0] == j, 1:])


def test_a_pyramid_level_smaller_than_the_window_is_skipped(lfw, detector):
    """At min_face_size 40 the last level of a wide photo is under 12 pixels high: it is
    skipped (the package fails on it and reports no face at all)."""
    lfw_dir, _ = lfw
    parts = [np.asarray(Image.open(os.path.join(lfw_dir, p)).convert("RGB"))
             for p in PHOTOS[:3]]
    wide = np.asarray(Image.fromarray(np.concatenate(parts, axis=1)).resize((1600, 533)))
    rows = detector.detect([wide], min_face_size=40)
    assert sorted(int((r[1] + r[3]) / 2 // (1600 / 3)) for r in rows if r[5] > 0.9) == [0, 1, 2]


def test_the_graphs_are_cached_reused_and_rebuilt_when_damaged(tmp_path, monkeypatch, caplog):
    folder = str(tmp_path)
    first = mtcnn_onnx.cached_models(folder)
    names = sorted(os.listdir(folder))
    assert len(names) == 4 and names[0].startswith("mtcnn.") and names[0].endswith(".json")

    def no_build(files):
        raise AssertionError("rebuilt although cached")

    real_build = mtcnn_onnx.build_models
    monkeypatch.setattr(mtcnn_onnx, "build_models", no_build)
    assert mtcnn_onnx.cached_models(folder) == first  # read back, not rebuilt
    monkeypatch.setattr(mtcnn_onnx, "build_models", real_build)

    onet = os.path.join(folder, next(n for n in names if n.startswith("mtcnn_onet")))
    with open(onet, "r+b") as f:  # one flipped byte in the weights: loads, but wrong
        f.seek(os.path.getsize(onet) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="facenet.mtcnn_onnx"):
        again = mtcnn_onnx.cached_models(folder)
    assert again == first
    assert "sha256 differs" in caplog.text and os.path.basename(onet) in caplog.text
    with open(onet, "rb") as f:
        assert f.read() == first["onet"]  # mended on disk
    manifest = os.path.join(folder, names[0])
    with open(manifest, "w") as f:
        f.write("{not json")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="facenet.mtcnn_onnx"):
        assert mtcnn_onnx.cached_models(folder) == first
    assert "unreadable" in caplog.text


def test_a_missing_mtcnn_package_is_one_clear_error(monkeypatch):
    from utils.errors import FacenetError

    monkeypatch.setattr(mtcnn_onnx.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FacenetError, match="needs the `mtcnn` package"):
        mtcnn_onnx.package_weight_files()
