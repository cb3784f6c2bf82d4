"""Face detection and alignment: the maths, real LFW faces, no-face and many-face photos."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from conftest import run_script
from facenet.align import (FaceAligner, NoFaceError, similarity_transform, template_points,
                           transform_points)

pytest.importorskip("mtcnn", reason="face detection needs the mtcnn package")

# LFW photos with one face each (checked with MTCNN), used to build test inputs.
ONE_FACE = [("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2), ("Abdullah_Gul", 1),
            ("Abdullah_Gul", 2), ("Colin_Powell", 1), ("Colin_Powell", 2)]


def lfw_image(lfw_dir, name, i):
    return os.path.join(lfw_dir, name, f"{name}_{i:04d}.jpg")


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner((160, 160))


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -40.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-7)
    np.testing.assert_allclose(transform_points(m, src), dst, atol=1e-7)


def test_similarity_transform_never_mirrors():
    src = np.random.default_rng(2).uniform(0, 100, size=(5, 2))
    dst = src * np.array([-1.0, 1.0])  # a mirror image: a reflection would fit it exactly
    m = similarity_transform(src, dst)
    assert np.linalg.det(m[:, :2]) >= 0  # rotation and scale only, never a flip


def test_margin_shrinks_the_template_towards_the_centre():
    tight, wide = template_points((160, 160), 0.0), template_points((160, 160), 0.1)
    centre = np.array([80.0, 80.0])
    assert np.all(np.linalg.norm(wide - centre, axis=1) < np.linalg.norm(tight - centre, axis=1))
    with pytest.raises(ValueError, match="margin"):
        template_points((160, 160), 0.5)


def test_aligned_eyes_land_on_the_template(aligner, lfw):
    """The eyes of real LFW faces land within a few pixels of the template's (160x160); the
    least-squares fit over five points leaves a face's own proportions, and a turned head
    (Abdullah_Gul 2) sits farther off."""
    lfw_dir, _ = lfw
    target = template_points((160, 160), aligner.margin)
    carried, found = [], []
    for name, i in ONE_FACE:
        face = aligner.align(lfw_image(lfw_dir, name, i))
        assert face.image.shape == (160, 160, 3) and face.image.dtype == np.uint8
        assert face.face.confidence > 0.9
        # the landmarks carried by the transform ...
        carried.append(np.abs(face.landmarks[:2] - target[:2]).max())
        # ... and what the detector finds again in the warped crop (checks the warp itself)
        again = aligner.detector.detect(Image.fromarray(face.image))
        assert again, f"no face in the aligned crop of {name} {i}"
        found.append(np.abs(again[0].landmarks[:2] - target[:2]).max())
    assert np.median(carried) < 2.0 and max(carried) < 6.0, carried
    assert np.median(found) < 3.0 and max(found) < 8.0, found


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face_is_a_clear_error(aligner, kind):
    rng = np.random.default_rng(1)
    image = (np.full((240, 320, 3), 200, np.uint8) if kind == "blank"
             else rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    with pytest.raises(NoFaceError, match="no face found"):
        aligner.align(image)
    assert aligner.align_all(image) == []


def test_detection_runs_on_the_engine_asked_for_and_says_when_it_falls_back(monkeypatch,
                                                                              caplog):
    import logging

    from facenet import align, engine
    from facenet.align import FaceDetector
    from utils.errors import SettingError

    assert FaceDetector(engine="keras").engine_used() == "keras"
    if engine.onnxruntime_available():
        assert FaceDetector().engine_used() == "onnx"  # auto
    monkeypatch.setattr(engine, "onnxruntime_available", lambda: False)
    align._say_detection_fallback.cache_clear()
    with caplog.at_level(logging.INFO, logger="facenet.align"):
        assert FaceDetector().engine_used() == FaceDetector().engine_used() == "keras"
    said = [r.getMessage() for r in caplog.records if "face detection runs" in r.getMessage()]
    assert len(said) == 1 and "pip install onnxruntime" in said[0]
    with pytest.raises(SettingError, match="engine 'onnx' needs onnxruntime"):
        FaceDetector(engine="onnx").engine_used()
    with pytest.raises(SettingError, match="engine must be one of"):
        FaceDetector(engine="tf").engine_used()
    # both engines find the same faces (tests/test_mtcnn_onnx.py): one alignment cache key
    assert FaceDetector(engine="onnx").settings() == FaceDetector(engine="keras").settings()


def test_tiny_image_has_no_face_rather_than_a_crash(aligner):
    with pytest.raises(NoFaceError):
        aligner.align(np.zeros((8, 8, 3), np.uint8))


@pytest.fixture(scope="module")
def group_photo(lfw, tmp_path_factory):
    """Three LFW faces side by side in one 750x250 photo."""
    lfw_dir, _ = lfw
    parts = [Image.open(lfw_image(lfw_dir, n, i)).convert("RGB")
             for n, i in (ONE_FACE[0], ONE_FACE[2], ONE_FACE[4])]
    canvas = Image.new("RGB", (750, 250))
    for k, part in enumerate(parts):
        canvas.paste(part, (250 * k, 0))
    path = tmp_path_factory.mktemp("group") / "group.jpg"
    canvas.save(path, quality=95)
    return str(path)


def test_all_faces_of_a_group_photo(aligner, group_photo):
    faces = aligner.align_all(group_photo)
    assert len(faces) == 3
    centres = sorted((f.face.box[0] + f.face.box[2]) / 2 for f in faces)
    assert [int(c // 250) for c in centres] == [0, 1, 2]  # one face in each third
    areas = [f.face.area for f in faces]
    assert areas == sorted(areas, reverse=True)  # largest first
    one = aligner.align(group_photo)
    assert one.face.area == max(areas)


@pytest.mark.slow
def test_predict_all_faces(group_photo, pretrained_path):
    r = run_script(["predict.py", "--all-faces", group_photo])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "3 face(s)" in r.stdout
    verdicts = [line for line in r.stdout.splitlines() if " vs A" in line]
    assert len(verdicts) == 3 and all(line.endswith("different") for line in verdicts)


@pytest.mark.slow
def test_predict_align_on_full_size_photos(lfw, pretrained_path):
    from facenet import weights

    lfw_dir, _ = lfw
    card = weights.read_card(pretrained_path)
    a, b = lfw_image(lfw_dir, "Colin_Powell", 1), lfw_image(lfw_dir, "Colin_Powell", 2)
    c = lfw_image(lfw_dir, "Abdullah_Gul", 1)
    r = run_script(["predict.py", "--align", a, b, "--out", ""])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "aligned the" in r.stdout and r.stdout.strip().endswith("same")
    engine = re.search(r", (\w+ \w+), threshold", r.stderr).group(1)  # e.g. "onnx int8"
    threshold = card["engines"].get(engine, {}).get("threshold", card["aligned"]["threshold"])
    assert f"threshold {threshold:.4f}" in r.stdout  # aligned faces: the engine's own
    r = run_script(["predict.py", "--align", a, c, "--out", ""])
    assert r.returncode == 0 and r.stdout.strip().endswith("different")


@pytest.mark.slow
def test_predict_says_when_no_face_is_found(lfw, pretrained_path, tmp_path):
    lfw_dir, _ = lfw
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
    a = lfw_image(lfw_dir, "Colin_Powell", 1)
    r = run_script(["predict.py", a, str(blank), "--out", ""])  # default: align when possible
    assert r.returncode == 0, r.stderr[-2000:]
    assert "blank.png: no face found" in r.stdout
    r = run_script(["predict.py", "--align", a, str(blank), "--out", ""])
    assert r.returncode != 0 and "no face found in" in r.stderr and "blank.png" in r.stderr


@pytest.mark.slow
def test_eval_align_caches_crops_and_falls_back(lfw, pretrained_path, tmp_path):
    """Aligned LFW scoring on a few pairs: crops cached; a faceless image uses the crop box."""
    from facenet import Facenet
    from facenet.evaluation import evaluate_pairs
    from utils.lfw import Pair

    lfw_dir, _ = lfw
    blank = str(tmp_path / "blank.jpg")
    Image.new("RGB", (250, 250), (128, 128, 128)).save(blank)
    paths = [lfw_image(lfw_dir, n, i) for n, i in ONE_FACE]
    pairs = [Pair(paths[0], paths[1], True, 0, 1), Pair(paths[2], paths[3], True, 0, 2),
             Pair(paths[0], paths[2], False, 0, 3), Pair(paths[4], blank, False, 0, 4)]
    model = Facenet(model_path=pretrained_path, crop="lfw", align="auto",
                    align_cache=str(tmp_path / "cache"))
    first = evaluate_pairs(model, pairs, progress=False)
    assert first["alignment"]["aligned"] == 5 and first["alignment"]["fallback"] == 1
    assert first["alignment"]["cached"] == 0
    second = evaluate_pairs(model, pairs, progress=False)
    assert second["alignment"]["cached"] == 6 and second["alignment"]["fallback"] == 1
    np.testing.assert_allclose(first["distances"], second["distances"], atol=1e-5)
    d = first["distances"]
    assert d[0] < model.threshold and d[1] < model.threshold and d[2] > model.threshold
    settings = json.load(open(next((tmp_path / "cache").glob("*/settings.json"))))
    assert settings["method"] == "similarity" and settings["size"] == [160, 160]
