"""Write MTCNN's three networks (PNet, RNet, ONet) as ONNX graphs from the `mtcnn` package's
own weight files, with `onnx.helper`.

Why: comparing two photos on the ONNX engine should load no TensorFlow, and the package builds
its networks with it. The weight files are joblib lists of float32 arrays in the order of the
package's Keras layers (kernel, bias, PReLU alpha, ...); joblib reads them without importing
the package. Each graph takes what the package's network takes, float32 NHWC pixels scaled to
[-1, 1] by (x - 127.5) / 128, and returns its outputs under the package's order and names.
"""
import numpy as np

from facenet.onnx_build import OPSET, GraphWriter
from utils.errors import WeightFileError

NETS = ("pnet", "rnet", "onet")
# Bumped whenever the graphs written for the same weights change: part of the cache key.
GRAPH_VERSION = 1

# The layers of each network in weight order: ("conv", out channels, kernel), ("prelu",),
# ("pool", size, stride, padding), ("flatten",): the package's Permute((2, 1, 3)) then
# Flatten, ("dense", units); then its heads: (output name, kind, units, softmax).
_LAYERS = {
    "pnet": [("conv", 10, 3), ("prelu",), ("pool", 2, 2, "same"), ("conv", 16, 3), ("prelu",),
             ("conv", 32, 3), ("prelu",)],
    "rnet": [("conv", 28, 3), ("prelu",), ("pool", 3, 2, "same"), ("conv", 48, 3), ("prelu",),
             ("pool", 3, 2, "valid"), ("conv", 64, 2), ("prelu",), ("flatten",),
             ("dense", 128), ("prelu",)],
    "onet": [("conv", 32, 3), ("prelu",), ("pool", 3, 2, "same"), ("conv", 64, 3), ("prelu",),
             ("pool", 3, 2, "valid"), ("conv", 64, 3), ("prelu",), ("pool", 2, 2, "same"),
             ("conv", 128, 2), ("prelu",), ("flatten",), ("dense", 256), ("prelu",)],
}
_HEADS = {
    "pnet": [("boxes", "conv", 4, False), ("scores", "conv", 2, True)],
    "rnet": [("boxes", "dense", 4, False), ("scores", "dense", 2, True)],
    "onet": [("boxes", "dense", 4, False), ("landmarks", "dense", 10, False),
             ("scores", "dense", 2, True)],
}
INPUT_SIZE = {"pnet": None, "rnet": 24, "onet": 48}  # None: any size of at least 12
OUTPUTS = {net: [h[0] for h in heads] for net, heads in _HEADS.items()}
INPUT = "images"


def _expected_shapes(net):
    """The shapes of the weight list of `net`, in order (what the file must hold)."""
    shapes, channels, flat = [], 3, None
    size = INPUT_SIZE[net]
    for layer in _LAYERS[net]:
        kind = layer[0]
        if kind == "conv":
            shapes += [(layer[2], layer[2], channels, layer[1]), (layer[1],)]
            channels = layer[1]
            size = size and size - layer[2] + 1
        elif kind == "prelu":
            shapes.append((1, 1, channels) if flat is None else (flat,))
        elif kind == "pool":
            size = size and (-(-size // layer[2]) if layer[3] == "same"
                             else (size - layer[1]) // layer[2] + 1)
        elif kind == "flatten":
            flat = channels * size * size
        elif kind == "dense":
            shapes += [(flat, layer[1]), (layer[1],)]
            flat = layer[1]
    for _, kind, units, _ in _HEADS[net]:
        shapes += [(1, 1, channels, units) if kind == "conv" else (flat, units), (units,)]
    return shapes


def check_weights(net, weights, source):
    """`weights` as a list of float32 arrays of the shapes `net` needs; a WeightFileError
    naming `source` and the first array that does not fit otherwise."""
    expected = _expected_shapes(net)
    if not isinstance(weights, (list, tuple)) or len(weights) != len(expected):
        n = len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise WeightFileError(f"{source}: expected a list of {len(expected)} arrays for "
                              f"{net}, got {n}; reinstall the mtcnn package")
    out = []
    for k, (w, shape) in enumerate(zip(weights, expected)):
        w = np.asarray(w)
        if w.shape != shape or not np.issubdtype(w.dtype, np.floating) \
                or not np.isfinite(w).all():
            raise WeightFileError(f"{source}: array {k} of {net} is {w.dtype} {w.shape}, "
                                  f"expected finite float {shape}; reinstall the mtcnn package")
        out.append(w.astype(np.float32))
    return out


def mtcnn_to_onnx(net, weights):
    """An onnx.ModelProto of `net` ("pnet", "rnet" or "onet") from its weight list."""
    import onnx
    from onnx import TensorProto, helper

    weights = iter(check_weights(net, weights, net))
    g = GraphWriter()
    x = g.node("Transpose", [INPUT], "nchw", perm=[0, 3, 1, 2])
    for k, layer in enumerate(_LAYERS[net]):
        name, kind = f"l{k}_{layer[0]}", layer[0]
        if kind == "conv":
            w = next(weights).transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
            x = g.node("Conv", [x, g.const(name + "/W", w), g.const(name + "/B", next(weights))],
                       name, kernel_shape=list(w.shape[2:]))
        elif kind == "prelu":
            alpha = next(weights)
            slope = alpha.reshape(-1, 1, 1) if alpha.ndim == 3 else alpha
            x = g.node("PRelu", [x, g.const(name + "/slope", slope)], name)
        elif kind == "pool":  # TensorFlow's "same" pads the extra one after: SAME_UPPER
            pad = {"auto_pad": "SAME_UPPER"} if layer[3] == "same" else {}
            x = g.node("MaxPool", [x], name, kernel_shape=[layer[1]] * 2,
                       strides=[layer[2]] * 2, **pad)
        elif kind == "flatten":  # the package flattens (N, W, H, C): Permute((2, 1, 3))
            x = g.node("Flatten", [g.node("Transpose", [x], name + "/whc", perm=[0, 3, 2, 1])],
                       name, axis=1)
        elif kind == "dense":
            x = g.node("Gemm", [x, g.const(name + "/W", next(weights)),
                                g.const(name + "/B", next(weights))], name)
    outputs = []
    for out, kind, units, softmax in _HEADS[net]:
        w, b = next(weights), next(weights)
        stem = out + "/linear" if softmax or kind == "conv" else out
        if kind == "conv":
            y = g.node("Conv", [x, g.const(out + "/W", w.transpose(3, 2, 0, 1)),
                                g.const(out + "/B", b)], stem, kernel_shape=[1, 1])
            if softmax:
                y = g.node("Softmax", [y], out + "/softmax", axis=1)
            g.node("Transpose", [y], out, perm=[0, 2, 3, 1])  # back to NHWC, as the package
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                                         ["batch", "h", "w", units]))
        else:
            y = g.node("Gemm", [x, g.const(out + "/W", w), g.const(out + "/B", b)], stem)
            if softmax:
                g.node("Softmax", [y], out, axis=1)
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                                         ["batch", units]))
    size = INPUT_SIZE[net]
    shape = ["batch", size or "height", size or "width", 3]
    graph = helper.make_graph(g.nodes, f"mtcnn_{net}",
                              [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape)],
                              outputs, initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="facenet-keras", producer_version=str(GRAPH_VERSION))
    proto.ir_version = 8  # as facenet/onnx_build.py: what ONNX Runtime 1.15+ reads
    onnx.checker.check_model(proto)
    return proto
