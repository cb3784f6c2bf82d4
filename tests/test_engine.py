"""The ONNX Runtime engine: parity with Keras on real faces, int8 made reproducibly from the
shipped calibration table, the cached model, and the per-machine "auto" rule."""
import functools
import glob
import logging
import os

import pytest

from conftest import LFW_DIR
from facenet import engine
from facenet.engine import choose_engine, resolve_engine
from utils import precision
from utils.errors import SettingError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

VNNI = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
AVX_VNNI = frozenset({"avx2", "avx_vnni"})
AMX = frozenset({"avx512f", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8"})
AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})  # 8-bit multiply-adds, no dot products
PLAIN = frozenset({"sse4_2", "avx"})
BACKBONES = ("mobilenet", "inception_resnetv1")


# -- the rule ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("flags", [VNNI, AVX_VNNI, AMX, AVX2])
def test_int8_onnx_where_the_cpu_has_8bit_multiply_adds(flags, backbone):
    assert choose_engine(flags, True, backbone) == ("onnx", "int8")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_keras_without_avx2_without_onnxruntime_or_with_a_gpu(backbone):
    assert choose_engine(PLAIN, True, backbone) == ("keras", "float32")
    assert choose_engine(PLAIN | {"amx_bf16"}, True, backbone) == ("keras", "bfloat16")
    assert choose_engine(VNNI, False, backbone) == ("keras", "float32")
    assert choose_engine(AMX, False, backbone) == ("keras", "bfloat16")  # utils/precision.py
    assert choose_engine(VNNI, True, backbone, (8, 0)) == ("keras", "bfloat16")
    assert choose_engine(VNNI, True, backbone, (7, 5)) == ("keras", "float32")


def test_resolve_keeps_explicit_choices_and_refuses_what_cannot_run(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: VNNI)
    monkeypatch.setattr(engine, "has_gpu", lambda: False)
    assert resolve_engine("auto", "auto", "mobilenet") == ("onnx", "int8")
    assert resolve_engine("auto", "float32", "mobilenet") == ("keras", "float32")
    assert resolve_engine("auto", "int8", "mobilenet") == ("onnx", "int8")
    assert resolve_engine("auto", "bfloat16", "mobilenet") == ("keras", "bfloat16")
    assert resolve_engine("onnx", "auto", "mobilenet") == ("onnx", "int8")
    assert resolve_engine("keras", "float32", "mobilenet") == ("keras", "float32")
    monkeypatch.setattr(precision, "cpu_flags", lambda: PLAIN)
    assert resolve_engine("onnx", "auto", "mobilenet") == ("onnx", "float32")
    with pytest.raises(SettingError, match="int8 runs on the ONNX Runtime engine"):
        resolve_engine("keras", "int8", "mobilenet")
    with pytest.raises(SettingError, match="bfloat16 runs on the Keras engine"):
        resolve_engine("onnx", "bfloat16", "mobilenet")
    with pytest.raises(SettingError, match="engine must be one of"):
        resolve_engine("tensorrt", "auto", "mobilenet")
    with pytest.raises(SettingError, match="int8 runs on the ONNX Runtime engine"):
        precision.resolve_precision("int8", "mobilenet")


def test_without_onnxruntime_keras_runs_and_one_line_says_how_to_install(monkeypatch, caplog):
    monkeypatch.setattr(engine, "onnxruntime_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: VNNI)
    monkeypatch.setattr(engine, "has_gpu", lambda: False)
    engine._say_keras_fallback.cache_clear()
    with caplog.at_level(logging.INFO, logger="facenet.engine"):
        assert resolve_engine("auto", "auto", "inception_resnetv1") == ("keras", "float32")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "slower" in lines[0] and "pip install onnxruntime" in lines[0]
    with pytest.raises(SettingError, match="pip install onnxruntime"):
        resolve_engine("onnx", "auto", "mobilenet")
    with pytest.raises(SettingError, match="pip install onnxruntime"):
        resolve_engine("auto", "int8", "mobilenet")


def test_every_embedding_command_offers_engine_and_int8():
    import eval_lfw
    import predict
    from facenet import gallery

    for parse, extra in ((predict.parse_args, ["a.jpg", "b.jpg"]), (eval_lfw.parse_args, [])):
        args = parse(["--engine", "onnx", "--precision", "int8"] + extra)
        assert (args.engine, args.precision) == ("onnx", "int8")
        args = parse(extra)
        assert args.engine == "auto" == args.precision
    args = gallery.build_parser().parse_args(["identify", "g.db", "x.jpg", "--engine", "keras"])
    assert (args.engine, args.precision) == ("keras", "auto")


# -- the models --------------------------------------------------------------------------------
def faces(n=12):
    """Real LFW faces at their fixed face box (no detection: fast)."""
    files = sorted(glob.glob(os.path.join(LFW_DIR, "*", "*.jpg")))
    if not files:
        pytest.skip("LFW is not in ../shared/data")
    return files[:: max(1, len(files) // n)][:n]


@functools.cache
def predictor(backbone, engine_name, precision_name):
    from facenet import Facenet

    return Facenet(backbone=backbone, engine=engine_name, precision=precision_name,
                   crop="lfw", align="off")


@functools.cache
def embeddings(backbone, engine_name, precision_name):
    return predictor(backbone, engine_name, precision_name).embed(faces())


def test_faces_are_found_on_the_predictors_engine():
    assert predictor("mobilenet", "onnx", "float32").aligner.detector.engine_used() == "onnx"
    assert predictor("mobilenet", "keras", "float32").aligner.detector.engine_used() == "keras"


def test_auto_detects_on_onnx_runtime_even_where_it_embeds_on_keras(monkeypatch):
    """A CPU without VNNI/AMX embeds on Keras; MTCNN is still faster on ONNX Runtime there."""
    from facenet import Facenet, engine

    monkeypatch.setattr(engine, "choose_engine", lambda *a, **k: ("keras", "float32"))
    f = Facenet(backbone="mobilenet", engine="auto", precision="auto", crop="lfw", align="off")
    assert f.engine == "keras" and f.aligner.detector.engine_used() == "onnx"


def test_the_cached_model_is_reused_without_building_keras():
    p = predictor("mobilenet", "onnx", "float32")
    before = os.stat(p.onnx_path).st_ino  # a rebuild replaces the file (a new inode)
    again = predictor.__wrapped__("mobilenet", "onnx", "float32")
    assert again.onnx_path == p.onnx_path and os.stat(p.onnx_path).st_ino == before
    assert again.__dict__.get("_model") is None  # no Keras network was built to start it




# -- galleries ---------------------------------------------------------------------------------
IDENTITY = {"model": "m", "weights_sha256": "a" * 64, "embedding_size": 128,
            "input_shape": [160, 160, 3], "align": True}


def test_a_gallery_refuses_embeddings_of_another_engine_or_precision(tmp_path):
    from facenet.gallery import Gallery, GalleryError

    made = {**IDENTITY, "engine": "onnx", "precision": "int8"}
    g = Gallery(tmp_path / "g.db", made)
    assert Gallery.load(g.path).identity["precision"] == "int8"  # recorded with the gallery
    Gallery(tmp_path / "g.db", dict(made))  # the same engine and precision: accepted
    for engine_name, precision_name in (("onnx", "float32"), ("keras", "float32")):
        with pytest.raises(GalleryError, match="--engine onnx --precision int8"):
            Gallery(tmp_path / "g.db", {**IDENTITY, "engine": engine_name,
                                        "precision": precision_name})
    # a gallery from before engines (no engine recorded) was made by Keras
    old = Gallery(tmp_path / "old.db", IDENTITY)
    Gallery(old.path, {**IDENTITY, "engine": "keras", "precision": "float32"})
    with pytest.raises(GalleryError, match="made by keras, this predictor runs onnx int8"):
        Gallery(old.path, {**IDENTITY, "engine": "onnx", "precision": "int8"})


def test_embedding_on_the_onnx_engine_imports_no_tensorflow():
    """With the ONNX model cached, a process that embeds crops loads neither TensorFlow nor
    Keras (seconds of start-up and hundreds of MB)."""
    import subprocess
    import sys

    from conftest import ROOT

    predictor("mobilenet", "onnx", "int8")  # makes the cached model, if missing
    code = ("import sys, numpy as np\nfrom facenet import Facenet\n"
            "f = Facenet(backbone='mobilenet', engine='onnx', precision='int8', align='off')\n"
            "e = f.embed_arrays(np.zeros((2, 112, 112, 3), np.uint8))\n"
            "print(e.shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["False", "False"], r.stdout


def test_model_cards_record_each_engine_and_precision_with_its_threshold():
    from facenet import weights as registry

    for name, info in registry.MODELS.items():
        card = registry.make_card(info, registry.weights_path(name)) if registry.is_fetched(
            name) else {"engines": info.engines}
        engines = card["engines"]
        for key in ("keras float32", "onnx float32", "onnx int8"):
            figures = engines[key]
            assert 0 < figures["threshold"] < 2 and 0.5 < figures["fold1_aligned_accuracy"] <= 1
        assert "benchmarks.engine_speed" in engines["command"]
        assert info.int8_table_sha256, f"{name} has engine figures but no int8 table"


def test_cached_models_of_older_settings_are_pruned_but_not_recent_or_other_ones(tmp_path):
    """Making a new cached model removes the same weights' and precision's models of other
    keys, oldest first, keeping the newest few and any used within the grace period; models of
    other weights or precisions, and other files, are left alone."""
    import os

    from facenet.engine import prune_cached

    now = 1_000_000.0

    def make(name, age_s):
        path = tmp_path / name
        path.write_bytes(b"x")
        os.utime(path, (now - age_s, now - age_s))
        return path

    new = make("facenet_a.int8.0000000000000000.onnx", 0)
    recent = make("facenet_a.int8.1111111111111111.onnx", 60)       # used a minute ago
    old = make("facenet_a.int8.2222222222222222.onnx", 86_400)
    older = make("facenet_a.int8.3333333333333333.onnx", 2 * 86_400)
    other_precision = make("facenet_a.float32.4444444444444444.onnx", 9 * 86_400)
    other_weights = make("facenet_b.int8.5555555555555555.onnx", 9 * 86_400)
    not_a_model = make("facenet_a.int8.notakey.onnx", 9 * 86_400)
    removed = prune_cached(str(new), keep=2, grace_s=3600, now=now)
    assert sorted(removed) == sorted([str(old), str(older)])
    for kept in (new, recent, other_precision, other_weights, not_a_model):
        assert kept.exists(), kept
    # Past the grace period, the newest other one is kept beside the new one.
    assert prune_cached(str(new), keep=2, grace_s=0, now=now) == []
    assert prune_cached(str(new), keep=1, grace_s=3600, now=now) == []  # used a minute ago
    assert prune_cached(str(new), keep=1, grace_s=0, now=now) == [str(recent)]


@pytest.mark.parametrize("busy, cpus, spin", [(0, 2, True), (1, 2, False), (2, 2, False),
                                              (7, 16, True), (8, 16, False)])
def test_onnx_runtime_threads_spin_only_on_an_otherwise_idle_cpu(busy, cpus, spin):
    from facenet.engine import spin_while_idle

    assert spin_while_idle(busy, cpus) is spin


def test_threads_running_elsewhere_sees_a_busy_process():
    """A process spinning on a core shows up at once (the load average would lag)."""
    import subprocess
    import sys
    import time

    from facenet.engine import threads_running_elsewhere

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        seen = [threads_running_elsewhere() for _ in range(5)]
    finally:
        busy.kill()
        busy.wait()
    assert max(seen) >= 1, seen
