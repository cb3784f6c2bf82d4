"""Weight loading in one place, always by layer name, never silently partial.

Three formats are read:
- the original's legacy Keras 2 HDF5 files (whole models with a `model_weights` group, or
  `save_weights` files), whose layer groups carry the layer names of docs/design.md;
- Keras 3 `.weights.h5`, which stores layers by position, not name: the source network is
  rebuilt from what the file holds (backbone, embedding size, classes) and loaded structurally;
- Keras 3 `.keras` archives, which carry their own config.

Every load ends in a `LoadReport`. A load that leaves any backbone or head layer unfilled raises
`WeightFileError` unless the caller asked for a partial load, which lists what it skipped.
A tensor of the wrong shape, or one holding NaN or infinity, is a `WeightFileError` naming the
file, the layer and the weight.
"""
import dataclasses
import os
import re
import zipfile

import h5py
import numpy as np

from utils.errors import WeightFileError

CLASSIFIER_LAYER = "Logits"  # the train-mode classifier: its size depends on the dataset
BACKBONE_MARKERS = {"conv_dw_1": "mobilenet", "Block35_1_Conv2d_1x1": "inception_resnetv1"}


@dataclasses.dataclass
class LoadReport:
    path: str
    file_format: str
    source_backbone: str
    filled: list
    skipped: list  # (layer name, reason)
    total: int

    def __str__(self):
        text = (f"loaded {len(self.filled)}/{self.total} weighted layers from {self.path} "
                f"({self.file_format}, {self.source_backbone})")
        if self.skipped:
            shown = ", ".join(f"{n} ({why})" for n, why in self.skipped[:8])
            more = f" and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            text += f"; skipped {len(self.skipped)}: {shown}{more}"
        return text


def guess_backbone(layer_names):
    for marker, backbone in BACKBONE_MARKERS.items():
        if marker in layer_names:
            return backbone
    return "an unknown network"


def _is_legacy_h5(f):
    return "model_weights" in f or "layer_names" in f.attrs


def _read_legacy_h5(f):
    """{layer name: [arrays]} from a Keras 2 HDF5 file, in each layer's saved weight order."""
    group = f["model_weights"] if "model_weights" in f else f
    weights = {}
    for raw in group.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        names = [w.decode() if isinstance(w, bytes) else str(w)
                 for w in group[name].attrs.get("weight_names", [])]
        if names:
            weights[name] = [np.asarray(group[name][w]) for w in names]
    return weights


def _keras3_h5_signature(f):
    """(backbone, embedding size, classes or None) of a Keras 3 `.weights.h5` of a FaceNet."""
    layers = f.get("layers")
    if layers is None:
        raise WeightFileError(f"{f.filename}: no 'layers' group: not a Keras 3 weights file")
    names = set(layers.keys())
    if "depthwise_conv2d" in names:
        backbone = "mobilenet"
    elif "scaled_residual" in names:
        backbone = "inception_resnetv1"
    else:
        raise WeightFileError(
            f"{f.filename} holds neither a MobileNet nor an Inception-ResNet-V1 FaceNet")
    embedding_size = int(layers["dense/vars/0"].shape[-1])
    num_classes = int(layers["dense_1/vars/0"].shape[-1]) if "dense_1" in names else None
    return backbone, embedding_size, num_classes


def _first_line(error):
    """Keras errors run to pages (whole tensors printed); their first line says what."""
    return (str(error).splitlines() or [""])[0]


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_layout(model):
    """Yield (layer, its variables' dataset paths) as Keras 3 stores them in a `.weights.h5`:
    by position, each layer under its class name with a counter (conv2d, conv2d_1, ...)."""
    seen = {}
    for layer in model.layers:
        name = _snake_case(type(layer).__name__)
        seen[name] = seen.get(name, -1) + 1
        key = f"{name}_{seen[name]}" if seen[name] else name
        yield layer, [f"layers/{key}/vars/{i}" for i in range(len(layer.weights))]


def _check_keras3_shapes(model, f, path):
    """Name the layer, weight and both shapes of a tensor that does not fit, before Keras
    loads (its own error is many lines without the file name)."""
    for layer, keys in _keras3_layout(model):
        for variable, key in zip(layer.weights, keys):
            if key not in f:
                return  # a layout this check does not know: Keras reports what is wrong
            found, expected = tuple(f[key].shape), tuple(variable.shape)
            if found != expected:
                raise WeightFileError(
                    f"{path}: layer {layer.name} weight {variable.name} has shape {found} in "
                    f"the file, {expected} in the model; the file is damaged or from another "
                    f"network: save or fetch it again")


def _keras_load(model, path):
    """`model.load_weights` of a Keras 3 `.weights.h5`, shapes checked first."""
    with h5py.File(path, "r") as f:
        _check_keras3_shapes(model, f, path)
    try:
        model.load_weights(path)
    except ValueError as e:
        raise WeightFileError(f"{path}: {_first_line(e)}") from e


def _named_weights(model):
    return {layer.name: [np.asarray(w) for w in layer.get_weights()]
            for layer in model.layers if layer.weights}


def _source_from_keras3_h5(path, f):
    from nets.facenet import facenet  # deferred: building networks needs Keras

    backbone, embedding_size, num_classes = _keras3_h5_signature(f)
    # Weights of a convolutional net with global pooling do not depend on the input size.
    side = 160 if backbone == "inception_resnetv1" else 64
    source = facenet((side, side, 3), num_classes=num_classes, backbone=backbone,
                     mode="train" if num_classes else "predict", embedding_size=embedding_size)
    _keras_load(source, path)
    return _named_weights(source)


def read_weights(path):
    """Read a weight file into ({layer name: [arrays]}, format name)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise WeightFileError(f"weight file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            import keras

            import nets.layers  # noqa: F401  registers the custom layers

            model = keras.saving.load_model(path, compile=False)
            return _named_weights(model), "keras"
        with h5py.File(path, "r") as f:
            if _is_legacy_h5(f):
                return _read_legacy_h5(f), "legacy-h5"
            return _source_from_keras3_h5(path, f), "keras3-weights-h5"
    except WeightFileError:
        raise
    except Exception as e:  # h5py/zip/keras errors on truncated or foreign files
        raise WeightFileError(
            f"cannot read weight file {path}: {type(e).__name__}: {_first_line(e)}. The file "
            f"may be truncated or not a Keras weight file; fetch or save it again.") from e


def _model_signature(model):
    """(backbone, embedding size, classes or None) of one of our FaceNet models."""
    names = {layer.name for layer in model.layers}
    classes = model.get_layer("Logits").units if "Logits" in names else None
    embedding = model.get_layer("Bottleneck").units if "Bottleneck" in names else None
    return guess_backbone(names), embedding, classes


def _load_same_network(model, path):
    """Fast path: a Keras 3 `.weights.h5` of exactly this network loads structurally, without
    rebuilding its source. Returns a LoadReport, or None when the file is anything else."""
    try:
        with h5py.File(path, "r") as f:
            if _is_legacy_h5(f) or _keras3_h5_signature(f) != _model_signature(model):
                return None
    except Exception:
        return None  # unreadable or foreign: the general path reports it
    _keras_load(model, path)
    weighted = [layer.name for layer in model.layers if layer.weights]
    return LoadReport(os.fspath(path), "keras3-weights-h5", _model_signature(model)[0],
                      weighted, [], len(weighted))


def load_weights(model, path, partial=False):
    """Fill `model`'s layers by name from the file at `path` and return a LoadReport.

    partial=False: every weighted layer except the train-mode classifier must be filled.
    partial=True: fill what matches (a training start from another model), report the rest.
    Either way, weights holding NaN or infinity are refused: they make every embedding alike.
    """
    report = None
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        report = _load_same_network(model, path)
    if report is None:
        report = _load_by_name(model, path, partial)
    _check_finite(model, report)
    return report


def _load_by_name(model, path, partial):
    weights, file_format = read_weights(path)
    targets = [layer for layer in model.layers if layer.weights]
    filled, skipped = [], []
    for layer in targets:
        source = weights.get(layer.name)
        if source is None:
            skipped.append((layer.name, "not in file"))
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(w.shape) for w in source]
        if expected != found:
            skipped.append((layer.name, f"shapes {found} in the file, {expected} in the model"))
            continue
        layer.set_weights(source)
        filled.append(layer.name)
    report = LoadReport(os.fspath(path), file_format, guess_backbone(weights), filled, skipped,
                        len(targets))
    if not partial and any(name != CLASSIFIER_LAYER for name, _ in skipped):
        raise _incomplete_load_error(model, report)
    return report


def _incomplete_load_error(model, report):
    """Say why a strict load left layers unfilled: another backbone, a tensor of another
    shape, or layers the file lacks - each with what to do."""
    backbone, source = _model_backbone(model), report.source_backbone
    if source in BACKBONE_MARKERS.values() and source != backbone:
        return WeightFileError(
            f"{report.path} holds a FaceNet of backbone {source}, the model is {backbone}: pass "
            f"--backbone {source} (backbone={source!r}), or keep a model card beside the file")
    missing = [(name, why) for name, why in report.skipped if name != CLASSIFIER_LAYER]
    shaped = [(name, why) for name, why in missing if why != "not in file"]
    if shaped:
        return WeightFileError(f"{report.path}: layer {shaped[0][0]} has weight {shaped[0][1]}; "
                               f"the file holds another network (embedding size?) or is damaged")
    return WeightFileError(
        f"{report.path} filled only {len(report.filled)} of {report.total} weighted layers of "
        f"this {backbone} model: {len(missing)} are not in the file, first {missing[0][0]}. Use "
        f"a file saved from the same network.")


def _check_finite(model, report):
    """Refuse NaN or infinite weights (a diverged training run saves them), naming the layer."""
    filled = set(report.filled)
    for layer in model.layers:
        if layer.name not in filled:
            continue
        for variable in layer.weights:
            values = np.asarray(variable.numpy(), np.float32)
            bad = values.size - np.count_nonzero(np.isfinite(values))
            if bad:
                raise WeightFileError(
                    f"{report.path}: layer {layer.name} weight {variable.name} holds {bad} NaN "
                    f"or infinite values of {values.size}; the weights are damaged (a training "
                    f"run that diverged?): use another weight file")


def _model_backbone(model):
    return guess_backbone({layer.name for layer in model.layers})
