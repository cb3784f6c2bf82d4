"""int8 ONNX models made offline from a shipped calibration table of activation ranges.

Calibration needs faces; the user has none to spare, so it runs once during development
(`python -m benchmarks.calibrate_int8`, faces of LFW folds 2-10, never fold 1) and keeps only
what quantization reads from it: each activation tensor's (min, max). The table (a few KB of
JSON, its checksum in the registry, facenet/weights.py) also names the nodes that stay in
float, a choice measured per backbone, and for a few convolutions their inputs' mean per
channel (bias correction: the mean error of int8 weights folded into the bias). With it,
`quantize_with_table` turns the float32 graph (facenet/onnx_build.py) into a static QDQ
model, per-channel int8 weights and uint8 activations, the same bytes every time.
"""
import json
import os

import numpy as np

from facenet.onnx_build import GRAPH_VERSION, INPUT, POST, PRE
from utils.errors import WeightFileError
from utils.fileio import sha256_of, write_json_atomic

TABLE_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calibration")
TABLE_VERSION = 1
# The op types quantized (the rest stay float: they are cheap or numerically delicate).
QUANTIZED_OPS = ("Conv", "Gemm", "MaxPool", "Concat", "Add", "Mul", "Relu", "Clip",
                 "GlobalAveragePool", "Flatten")


def table_path(model_name):
    return os.path.join(TABLE_FOLDER, f"{model_name}.int8.json")


def always_float(proto):
    """Preprocessing and the final normalisation stay in float in every model."""
    return [n.name for n in proto.graph.node if n.name.startswith((PRE, POST))]


CALIBRATION_METHODS = ("minmax", "percentile")


def calibrate(proto, batches, method="minmax", percentile=99.999):
    """{tensor: (min, max)} of `proto`'s activations over uint8 `batches` (an iterable of
    (N, H, W, 3) arrays) with ONNX Runtime's calibrators: "minmax" takes the extremes seen,
    "percentile" cuts the rarest `100 - percentile` percent of absolute values (a range set by
    a handful of outlying pixels wastes the 256 levels every other value needs)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; one of {CALIBRATION_METHODS}")
    batches = [np.asarray(b, np.uint8) for b in batches]
    if method == "percentile":  # its histograms stack the batches: one size for all
        images = np.concatenate(batches)
        size = max(d for d in range(1, 33) if len(images) % d == 0)
        batches = [images[i:i + size] for i in range(0, len(images), size)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            batch = next(self.it, None)
            return None if batch is None else {INPUT: batch}

    with tempfile.TemporaryDirectory(prefix="facenet-calib-") as tmp:
        path = os.path.join(tmp, "float.onnx")
        onnx.save(onnx.shape_inference.infer_shapes(proto), path)
        calibrator = create_calibrator(
            path, list(QUANTIZED_OPS), augmented_model_path=os.path.join(tmp, "aug.onnx"),
            calibrate_method=(CalibrationMethod.Percentile if method == "percentile"
                              else CalibrationMethod.MinMax),
            extra_options=({"percentile": float(percentile), "symmetric": True}
                           if method == "percentile" else {}))
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
    return {name: (float(np.asarray(r.range_value[0]).item()),
                   float(np.asarray(r.range_value[1]).item()))
            for name, r in sorted(data.data.items())}


def conv_input_means(proto, batches, convs):
    """{conv: mean of its input per channel} of float `proto` over uint8 `batches`: what bias
    correction needs of the calibration faces."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    inputs = {n.name: n.input[0] for n in proto.graph.node if n.name in convs}
    missing = sorted(set(convs) - set(inputs))
    if missing:
        raise ValueError(f"no convolution named {missing[0]!r} in the graph")
    model = type(proto)()
    model.CopyFrom(proto)
    names = sorted(set(inputs.values()))
    for name in names:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sums, count = {}, 0
    for batch in batches:
        outs = session.run(names, {INPUT: np.asarray(batch, np.uint8)})
        for name, out in zip(names, outs):  # NCHW: the mean over images and positions
            sums[name] = sums.get(name, 0) + out.astype(np.float64).sum(axis=(0, 2, 3))
        count += outs[0].shape[0] * outs[0].shape[2] * outs[0].shape[3]
    return {conv: (sums[name] / count).tolist() for conv, name in inputs.items()}


def correct_biases(proto, input_means):
    """A copy of `proto` whose named convolutions' biases absorb the mean error of rounding
    their weights to int8 (bias correction, Nagel et al. 2019): bias += sum over the kernel of
    (W - W_int8) * the input's mean per channel. W_int8 is the quantizer's own rounding:
    per output channel, symmetric, scale max|W| / 127."""
    from onnx import numpy_helper

    model = type(proto)()
    model.CopyFrom(proto)
    inits = {t.name: t for t in model.graph.initializer}
    convs = {n.name: n for n in model.graph.node if n.op_type == "Conv"}
    for name, means in sorted(input_means.items()):
        node = convs.get(name)
        if node is None or len(node.input) < 3:
            raise WeightFileError(f"calibration table: bias_correction names {name!r}, not a "
                                  f"convolution with a bias in this graph")
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        means = np.asarray(means, dtype=np.float64)
        if means.shape != (w.shape[1],) or not np.isfinite(means).all():
            raise WeightFileError(f"calibration table: bias_correction[{name!r}] must be "
                                  f"{w.shape[1]} finite numbers (one per input channel)")
        scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
        scale[scale == 0] = 1.0
        shape = (-1,) + (1,) * (w.ndim - 1)
        w_int8 = np.clip(np.round(w / scale.reshape(shape)), -127, 127) * scale.reshape(shape)
        shift = ((w - w_int8) * means.reshape((1, -1) + (1,) * (w.ndim - 2))).sum(
            axis=tuple(range(1, w.ndim)))
        bias = numpy_helper.to_array(inits[node.input[2]])
        inits[node.input[2]].CopyFrom(numpy_helper.from_array(
            (bias + shift).astype(np.float32), node.input[2]))
    return model


def write_table(path, ranges, float_nodes, about, bias_correction=None):
    """Save a calibration table (atomically). `about`: the model, the faces, the command;
    `bias_correction`: {conv: its input's mean per channel} (see correct_biases)."""
    table = {"table_version": TABLE_VERSION, "graph_version": GRAPH_VERSION, **about,
             "float_nodes": sorted(float_nodes),
             "ranges": {k: [float(np.float32(lo)), float(np.float32(hi))]
                        for k, (lo, hi) in sorted(ranges.items())}}
    if bias_correction:
        table["bias_correction"] = {k: [float(np.float32(v)) for v in means]
                                    for k, means in sorted(bias_correction.items())}
    write_json_atomic(path, table)
    return table


def read_table(path, expected_sha256=None, weights_sha256=None):
    """A calibration table, checked against the registry's checksum and the weights."""
    if not os.path.exists(path):
        raise WeightFileError(f"{path} is missing: the int8 calibration table ships with the "
                              f"repository; restore it with `git checkout -- {TABLE_FOLDER}` "
                              f"or use --precision float32")
    if expected_sha256 and sha256_of(path) != expected_sha256:
        raise WeightFileError(f"{path} does not match the registry's checksum: damaged or "
                              f"edited; restore it with git, or use --precision float32")
    with open(path, encoding="utf-8") as f:
        try:
            table = json.load(f)
        except ValueError as e:
            raise WeightFileError(f"{path}: not a calibration table ({e})") from None
    for key in ("graph_version", "ranges", "float_nodes", "weights_sha256"):
        if key not in table:
            raise WeightFileError(f"{path}: no field {key!r}; not a calibration table")
    if table["graph_version"] != GRAPH_VERSION:
        raise WeightFileError(f"{path} was made for ONNX graph version {table['graph_version']}"
                              f", this code writes version {GRAPH_VERSION}: calibrate again "
                              f"(python -m benchmarks.calibrate_int8) or use --precision float32")
    if weights_sha256 and table["weights_sha256"] != weights_sha256:
        raise WeightFileError(f"{path} was calibrated for other weights (sha256 "
                              f"{table['weights_sha256'][:12]}, these are "
                              f"{weights_sha256[:12]}); use --precision float32")
    return table


def quantize_with_table(proto, table):
    """The static QDQ int8 model of float `proto` (an onnx.ModelProto) from `table`'s ranges
    (and its bias corrections, where it has them)."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    names = {n.name for n in proto.graph.node}
    unknown = sorted(set(table["float_nodes"]) - names)
    if unknown:
        raise WeightFileError(f"calibration table names nodes this graph lacks: {unknown[:3]}")
    ranges = TensorsData(CalibrationMethod.MinMax,
                         {k: (np.float32(lo), np.float32(hi))
                          for k, (lo, hi) in table["ranges"].items()})
    if table.get("bias_correction"):
        proto = correct_biases(proto, table["bias_correction"])
    model = onnx.shape_inference.infer_shapes(proto)
    quantizer = QDQQuantizer(model=model, per_channel=True, reduce_range=False,
                             weight_qType=QuantType.QInt8, activation_qType=QuantType.QUInt8,
                             tensors_range=ranges, nodes_to_quantize=[],
                             nodes_to_exclude=always_float(proto) + list(table["float_nodes"]),
                             op_types_to_quantize=list(QUANTIZED_OPS), extra_options={})
    quantizer.quantize_model()
    return quantizer.model.model
