"""Weight files: the original's legacy HDF5, Keras 3 .weights.h5 and .keras, loaded by name."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT
from nets.facenet import facenet
from nets.weights_io import load_weights
from utils.errors import WeightFileError


def randomize_batchnorm(model, seed=0):
    """Give BatchNorm layers data-like statistics so that outputs are not ~0 (docs/design.md)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if "BatchNormalization" in type(layer).__name__:
            new = []
            for w in layer.weights:
                n = w.shape[0]
                if "variance" in w.name:
                    new.append(rng.uniform(0.5, 1.5, n).astype("float32"))
                elif "mean" in w.name:
                    new.append(rng.normal(0, 0.1, n).astype("float32"))
                elif "gamma" in w.name:
                    new.append(rng.uniform(0.8, 1.2, n).astype("float32"))
                else:
                    new.append(rng.normal(0, 0.1, n).astype("float32"))
            layer.set_weights(new)
    return model


def test_real_facenet_keras_h5_fills_all_245_layers(legacy_h5):
    model = facenet(backbone="inception_resnetv1", mode="predict")
    report = load_weights(model, legacy_h5)
    assert report.file_format == "legacy-h5"
    assert len(report.filled) == 245 == report.total and not report.skipped
    # The file's Bottleneck kernel is now ours, value for value.
    with h5py.File(legacy_h5, "r") as f:
        kernel = np.asarray(f["model_weights/Bottleneck/Bottleneck/kernel:0"])
    np.testing.assert_array_equal(model.get_layer("Bottleneck").get_weights()[0], kernel)


def test_mobilenet_file_into_inception_is_a_clear_error(tmp_path):
    mobile = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
    path = str(tmp_path / "mobile.weights.h5")
    mobile.save_weights(path)
    model = facenet(backbone="inception_resnetv1", mode="predict")
    with pytest.raises(WeightFileError) as err:
        load_weights(model, path)
    text = str(err.value)  # before: "ask for a partial load", an option predict.py lacks
    assert path in text and "--backbone mobilenet" in text and "partial" not in text
    report = load_weights(model, path, partial=True)
    assert len(report.filled) == 0 and len(report.skipped) == 245
    assert "skipped 245" in str(report)


def test_train_checkpoint_into_predict_model_and_other_class_count(tmp_path):
    train = randomize_batchnorm(facenet((64, 64, 3), num_classes=5, backbone="mobilenet"))
    path = str(tmp_path / "train.weights.h5")
    train.save_weights(path)
    predict = facenet((96, 96, 3), backbone="mobilenet", mode="predict")
    assert len(load_weights(predict, path).filled) == 56
    other = facenet((64, 64, 3), num_classes=9, backbone="mobilenet")
    report = load_weights(other, path)  # the classifier alone may differ: it is skipped, named
    assert [name for name, _ in report.skipped] == ["Logits"]


def save_legacy(model, path, replace=None):
    """Save `model` as a Keras 2 style file (layer_names / weight_names attributes), with
    `replace` ({(layer name, weight index): array}) written instead of those weights."""
    replace = replace or {}
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        names = [layer.name for layer in model.layers][::-1]  # order must not matter
        g.attrs["layer_names"] = [n.encode() for n in names]
        for layer in model.layers:
            lg = g.create_group(layer.name)
            wnames = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            lg.attrs["weight_names"] = wnames
            for i, (wn, w) in enumerate(zip(wnames, layer.get_weights())):
                lg.create_dataset(wn.decode(), data=replace.get((layer.name, i), w))
    return path


def test_legacy_layout_of_a_mobilenet_loads_by_name(tmp_path):
    """A Keras 2 style file of the MobileNet backbone."""
    source = randomize_batchnorm(facenet((64, 64, 3), backbone="mobilenet", mode="predict"))
    path = save_legacy(source, str(tmp_path / "legacy_mobilenet.h5"))
    target = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
    report = load_weights(target, path)
    assert report.file_format == "legacy-h5" and len(report.filled) == 56
    x = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(target(x, training=False), source(x, training=False), atol=1e-6)


def replace_keras3_tensor(path, key, value):
    with h5py.File(path, "a") as f:
        del f[key]
        f[key] = value


def test_nan_and_inf_weights_are_refused_naming_the_layer(tmp_path):
    """Before: they loaded, and every pair came out at distance 0: "same"."""
    model = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
    bottleneck = model.get_layer("Bottleneck").get_weights()[0]
    legacy = save_legacy(model, str(tmp_path / "inf.h5"),
                         {("Bottleneck", 0): np.full_like(bottleneck, np.inf)})
    with pytest.raises(WeightFileError, match="layer Bottleneck weight kernel holds"):
        load_weights(model, legacy)
    path = str(tmp_path / "nan.weights.h5")
    model.save_weights(path)
    kernel = model.get_layer("conv1").get_weights()[0]
    replace_keras3_tensor(path, "layers/conv2d/vars/0", np.where(kernel > 0, np.nan, kernel))
    with pytest.raises(WeightFileError, match="NaN or infinite") as err:
        load_weights(model, path)
    assert f"{path}: layer conv1 weight kernel holds" in str(err.value)


def test_a_tensor_of_the_wrong_shape_names_file_layer_and_shapes(tmp_path):
    """Before: a warning that layers keep random weights, then pages of Keras text."""
    model = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
    path = str(tmp_path / "bad.weights.h5")
    model.save_weights(path)
    replace_keras3_tensor(path, "layers/conv2d_3/vars/0", np.zeros((1, 1, 64, 99), "float32"))
    with pytest.raises(WeightFileError) as err:
        load_weights(model, path)
    text = str(err.value)
    assert text.startswith(f"{path}: layer conv_pw_3 weight kernel has shape (1, 1, 64, 99) "
                           f"in the file, (1, 1, 128, 128) in the model") and "\n" not in text
    legacy = save_legacy(model, str(tmp_path / "bad.h5"),
                         {("Bottleneck", 0): np.zeros((1024, 64), "float32")})
    with pytest.raises(WeightFileError) as err:
        load_weights(model, legacy)
    assert "layer Bottleneck has weight shapes [(1024, 64)] in the file, [(1024, 128)] in the " \
           "model" in str(err.value) and "--backbone" not in str(err.value)


def test_a_weight_file_given_first_is_the_model_loaded(tmp_path, caplog):
    """Facenet("m.weights.h5") loads that file, not the default model."""
    from facenet import Facenet

    path = str(tmp_path / "m.weights.h5")
    facenet((64, 64, 3), backbone="mobilenet", mode="predict").save_weights(path)
    model = Facenet(path, input_shape=(64, 64, 3), align="off")
    assert any("no model card" in r.getMessage() for r in caplog.records)
    assert model.model_path == path and model.load_report.path == path
    with pytest.raises(TypeError):
        Facenet(path, print)  # the settings are keyword-only


def test_missing_and_truncated_files(tmp_path, legacy_h5):
    model = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
    with pytest.raises(WeightFileError, match="not found"):
        load_weights(model, str(tmp_path / "nope.weights.h5"))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(open(legacy_h5, "rb").read(100_000))
    with pytest.raises(WeightFileError, match="truncated"):
        load_weights(model, str(truncated))


FRESH = """
import numpy as np, keras
from nets.facenet import facenet
from nets.weights_io import load_weights
x = np.load({x!r})
m = facenet((64, 64, 3), backbone="mobilenet", mode="predict")
print(load_weights(m, {weights!r}))
whole = keras.saving.load_model({keras_file!r})  # safe mode: no Lambda layers to refuse
np.save({out!r}, np.stack([m(x, training=False), whole(x, training=False)]))
"""


@pytest.mark.slow
def test_keras_and_weights_round_trips_in_a_fresh_process(tmp_path):
    model = randomize_batchnorm(facenet((64, 64, 3), backbone="mobilenet", mode="predict"))
    x = np.random.default_rng(2).uniform(0, 1, (4, 64, 64, 3)).astype("float32")
    expected = np.asarray(model(x, training=False))
    assert np.allclose(np.linalg.norm(expected, axis=1), 1, atol=1e-4)
    files = {"x": str(tmp_path / "x.npy"), "weights": str(tmp_path / "m.weights.h5"),
             "keras_file": str(tmp_path / "m.keras"), "out": str(tmp_path / "out.npy")}
    np.save(files["x"], x)
    model.save_weights(files["weights"])
    model.save(files["keras_file"])
    code = FRESH.format(**files)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    got = np.load(files["out"])
    np.testing.assert_array_equal(got[0], expected)
    np.testing.assert_array_equal(got[1], expected)
