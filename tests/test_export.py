"""Export: SavedModel and TFLite take uint8 images and give the Keras model's embeddings."""
import json
import os

import numpy as np
import pytest

from conftest import mobilenet_with_statistics, run_script


@pytest.fixture(scope="module")
def faces(lfw, pretrained_lfw):
    lfw_dir, _ = lfw
    names = ["Aaron_Peirsol", "Abdullah_Gul", "Colin_Powell"]
    paths = [os.path.join(lfw_dir, n, f"{n}_000{i}.jpg") for n in names for i in (1, 2)]
    return np.stack([pretrained_lfw.prepare(p) for p in paths])


@pytest.fixture(scope="module")
def savedmodel(pretrained_lfw, tmp_path_factory):
    from facenet.export import export

    out = str(tmp_path_factory.mktemp("export") / "savedmodel")
    return export(pretrained_lfw, "savedmodel", out)


@pytest.mark.slow
def test_savedmodel_serves_uint8_images(savedmodel, pretrained_lfw, faces):
    import tensorflow as tf

    serve = tf.saved_model.load(savedmodel).signatures["serving_default"]
    spec = serve.structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 160, 160, 3]
    got = serve(images=tf.constant(faces))["embeddings"].numpy()
    want = pretrained_lfw.embed_arrays(faces)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * want).sum(1).min() >= 0.9999
    card = json.load(open(os.path.join(savedmodel, "card.json")))
    assert card["export"]["format"] == "savedmodel" and card["preprocessing"] == "standardize"


@pytest.mark.slow
@pytest.mark.parametrize("quantize,least", [("float32", 0.9999), ("int8", 0.99)])
def test_tflite_parity(savedmodel, pretrained_lfw, faces, tmp_path, quantize, least):
    import tensorflow as tf

    from facenet.export import export_tflite

    path = export_tflite(savedmodel, str(tmp_path / f"m_{quantize}.tflite"), quantize)
    try:  # LiteRT where it installs: TensorFlow's own interpreter is deprecated
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    run = Interpreter(model_path=path).get_signature_runner("serving_default")
    got = np.concatenate([run(images=faces[i:i + 1])["embeddings"] for i in range(len(faces))])
    want = pretrained_lfw.embed_arrays(faces)
    assert (got * want).sum(1).min() >= least
    # same-person pairs stay closer than different-person pairs
    d = np.linalg.norm(got[:, None] - got[None], axis=-1)
    assert max(d[0, 1], d[2, 3], d[4, 5]) < min(d[0, 2], d[0, 4], d[2, 4])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small MobileNet predictor with a card, saved in its own folder."""
    from facenet import Facenet
    from nets.facenet import facenet

    folder = tmp_path_factory.mktemp("small")
    path = str(folder / "small.weights.h5")
    facenet((64, 64, 3), backbone="mobilenet", mode="predict").save_weights(path)
    card = {"backbone": "mobilenet", "input_shape": [64, 64, 3], "preprocessing": "scale01",
            "threshold": 1.1}
    (folder / "small.json").write_text(json.dumps(card))
    return Facenet(path, align="off")


def test_onnx_export_is_the_engines_own_model_without_a_converter(small, tmp_path):
    """Before: ONNX export went through tf2onnx (not installed: no ONNX export at all)."""
    pytest.importorskip("onnxruntime")
    from facenet import Facenet
    from facenet.engine import OnnxRunner
    from facenet.export import export
    from utils.errors import SettingError

    mobilenet_with_statistics(64, seed=1).save_weights(str(tmp_path / "w.weights.h5"))
    small = Facenet(str(tmp_path / "w.weights.h5"), backbone="mobilenet", align="off",
                    input_shape=(64, 64, 3), engine="keras", precision="float32")
    path = export(small, "onnx", str(tmp_path / "m.onnx"))
    faces = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    got, want = OnnxRunner(path)(faces), small.embed_arrays(faces)
    assert (got * want).sum(1).min() >= 0.9999
    assert json.loads((tmp_path / "m.json").read_text())["export"]["quantize"] == "float32"
    on_onnx = Facenet(small.model_path, backbone="mobilenet", align="off",
                      input_shape=(64, 64, 3), engine="onnx", precision="float32")
    again = export(on_onnx, "onnx", str(tmp_path / "again.onnx"))  # the engine's cached file
    assert open(again, "rb").read() == open(on_onnx.onnx_path, "rb").read()
    with pytest.raises(SettingError, match="ONNX exports are float32 or int8, not 'float16'"):
        export(small, "onnx", str(tmp_path / "h.onnx"), quantize="float16")
    with pytest.raises(SettingError, match="int8 ONNX export needs a predictor on the ONNX"):
        export(small, "onnx", str(tmp_path / "i.onnx"), quantize="int8")


def test_export_replaces_nothing_unasked(small, tmp_path):
    """Before: an existing file, its card, or a non-empty folder was silently written over."""
    from facenet.export import export
    from utils.errors import FacenetError

    old = tmp_path / "m.tflite"
    old.write_text("an older export")
    with pytest.raises(FacenetError, match=f"^{old} exists; pass --overwrite"):
        export(small, "tflite", str(old))
    (tmp_path / "n.json").write_text("{}")
    with pytest.raises(FacenetError, match="n.json exists; pass --overwrite"):
        export(small, "tflite", str(tmp_path / "n.tflite"))
    assert old.read_text() == "an older export" and not (tmp_path / "n.tflite").exists()
    folder = tmp_path / "savedmodel"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FacenetError, match="is a folder that is not empty; pass --overwrite"):
        export(small, "savedmodel", str(folder))
    export(small, "savedmodel", str(folder), overwrite=True)
    assert (folder / "saved_model.pb").exists() and (folder / "card.json").exists()


def test_export_never_replaces_a_models_own_files(small, tmp_path, monkeypatch):
    """Before: --out model_data/<registered name>.tflite replaced the pretrained model's card,
    and the next start fetched 90 MB again."""
    from facenet import weights as registry
    from facenet.export import export
    from utils.errors import FacenetError

    monkeypatch.setattr(registry, "MODEL_DATA", str(tmp_path))
    registered = registry.weights_path(registry.DEFAULT_MODEL, str(tmp_path))
    own = small.model_path.replace(".weights.h5", ".onnx")  # its card: the model's own
    for out, named in [(registered.replace(".weights.h5", ".tflite"), ".json"),
                       (registered, ".weights.h5"), (own, "small.json")]:
        with pytest.raises(FacenetError, match=f"refusing to write .*{named}: .* even with"):
            export(small, "tflite", out, overwrite=True)
        assert not os.path.exists(out)


def test_export_command_refuses_in_one_line_before_loading(tmp_path):
    """Before: tracebacks (NotADirectoryError) or a silent overwrite, after loading the model."""
    text = tmp_path / "file.txt"
    text.write_text("not a folder")
    cases = [("tflite", str(text / "x"), f"cannot export to {text / 'x'}: {text} is a file"),
             ("tflite", str(text), f"{text} exists; pass --overwrite"),
             ("savedmodel", str(text), f"{text} is a file; a savedmodel export is a folder")]
    for fmt, out, message in cases:
        r = run_script(["-m", "facenet.export", "--format", fmt, "--out", out], timeout=60)
        error = r.stderr.strip()
        assert r.returncode != 0 and error.startswith(f"error: {message}") and "\n" not in error
    assert text.read_text() == "not a folder"


def test_export_command_checks_the_default_out_and_the_format_before_the_model(tmp_path,
                                                                              monkeypatch):
    """Before: an existing default export folder, or a missing tf2onnx, was reported after
    the model had loaded."""
    from facenet import export as export_module
    from facenet import predictor

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the checks")

    monkeypatch.setattr(predictor, "Facenet", no_model)
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "model_data" / "export" / "facenet_inception_resnetv1_savedmodel"
    existing.mkdir(parents=True)
    (existing / "saved_model.pb").write_bytes(b"an earlier export")
    with pytest.raises(SystemExit) as e:
        export_module.main(["--format", "savedmodel"])
    assert "facenet_inception_resnetv1_savedmodel is a folder that is not empty" in str(
        e.value.code)
    with pytest.raises(SystemExit) as e:
        export_module.main(["--format", "onnx", "--quantize", "float16", "--out", "m.onnx"])
    assert "ONNX exports are float32 or int8, not --quantize float16" in str(e.value.code)
