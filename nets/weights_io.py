"""Weight loading in one place, always by layer name, never silently partial.

Three formats are read:
- the original's legacy Keras 2 HDF5 files (whole models with a `model_weights` group, or
  `save_weights` files), whose layer groups carry the layer names of docs/design.md;
- Keras 3 `.weights.h5`, which stores layers by position, not name: the source network is
  rebuilt from what the file holds (backbone, embedding size, classes) and loaded structurally;
- Keras 3 `.keras` archives, which carry their own config.

Every load ends in a `LoadReport`. A load that leaves any backbone or head layer unfilled raises
`WeightFileError` unless the caller asked for a partial load, which lists what it skipped.
"""
import dataclasses
import os
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
        raise WeightFileError("no 'layers' group: not a Keras 3 weights file")
    names = set(layers.keys())
    if "depthwise_conv2d" in names:
        backbone = "mobilenet"
    elif "scaled_residual" in names:
        backbone = "inception_resnetv1"
    else:
        raise WeightFileError("holds neither a MobileNet nor an Inception-ResNet-V1 FaceNet")
    embedding_size = int(layers["dense/vars/0"].shape[-1])
    num_classes = int(layers["dense_1/vars/0"].shape[-1]) if "dense_1" in names else None
    return backbone, embedding_size, num_classes


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
    source.load_weights(path)
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
    except WeightFileError as e:
        raise WeightFileError(f"{path}: {e}") from None
    except Exception as e:  # h5py/zip/keras errors on truncated or foreign files
        raise WeightFileError(
            f"cannot read weight file {path}: {type(e).__name__}: {e}. The file may be truncated "
            f"or not a Keras weight file; fetch or save it again.") from e


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
    model.load_weights(path)
    weighted = [layer.name for layer in model.layers if layer.weights]
    return LoadReport(os.fspath(path), "keras3-weights-h5", _model_signature(model)[0],
                      weighted, [], len(weighted))


def load_weights(model, path, partial=False):
    """Fill `model`'s layers by name from the file at `path` and return a LoadReport.

    partial=False: every weighted layer except the train-mode classifier must be filled.
    partial=True: fill what matches (a training start from another model), report the rest.
    """
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        report = _load_same_network(model, path)
        if report is not None:
            return report
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
            skipped.append((layer.name, f"shape {found} != {expected}"))
            continue
        layer.set_weights(source)
        filled.append(layer.name)
    report = LoadReport(os.fspath(path), file_format, guess_backbone(weights), filled, skipped,
                        len(targets))
    required_missing = [n for n, _ in skipped if n != CLASSIFIER_LAYER]
    if required_missing and not partial:
        raise WeightFileError(
            f"{path} filled only {len(filled)} of {len(targets)} weighted layers of this "
            f"{_model_backbone(model)} model; the file seems to hold {report.source_backbone}. "
            f"First unfilled: {', '.join(required_missing[:5])}. Use a file of the same backbone, "
            f"or ask for a partial load to start training from it.")
    return report


def _model_backbone(model):
    return guess_backbone({layer.name for layer in model.layers})
