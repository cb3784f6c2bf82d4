"""Write a FaceNet embedding network as an ONNX graph, layer by layer, with `onnx.helper`.

Why not a converter: the two backbones use a dozen layer types, so a direct writer is short,
needs only the small `onnx` package (no TensorFlow-to-ONNX tooling), names every tensor after
its Keras layer (the int8 calibration table is keyed by those names, so they must not move),
and gives the same bytes for the same weights (the int8 model is rebuilt reproducibly from it). Keras
is imported only to write a graph: running one needs neither it nor TensorFlow.

The graph takes uint8 NHWC crops ("images"), does the model card's preprocessing, runs in NCHW
(ONNX Runtime's native layout) and returns L2-normalised embeddings ("embeddings"). Pass it the
inference model (BatchNorms folded: nets/batchnorm_folding.py); a BatchNorm left unfolded
becomes a per-channel Mul and Add.
"""
import numpy as np

from utils.errors import SettingError

OPSET = 17
# Bumped whenever the graph written for the same weights changes: part of the cache key, and
# the calibration table says which graph its tensor names belong to.
GRAPH_VERSION = 2  # 2: residual scales folded into the convolution before them
INPUT, OUTPUT = "images", "embeddings"
PRE, POST = "pre/", "post/"  # name prefixes of the preprocessing and normalisation nodes


class GraphWriter:
    """Nodes and initializers gathered in order; helpers return the output tensor's name.
    Shared with the MTCNN writer (facenet/mtcnn_build.py)."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name, value, dtype=np.float32):
        self.inits.append(self.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _same_pads(size, kernel, stride, dilation=1):
    """TensorFlow's "same" padding along one axis: (before, after), the extra one after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _pads(layer, kernel_hw, strides):
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    h, w = layer.input.shape[1:3]
    (t, b), (l, r) = _same_pads(h, kernel_hw[0], strides[0]), _same_pads(w, kernel_hw[1],
                                                                         strides[1])
    return [t, l, b, r]


def _activation(g, name, activation, x):
    if activation in (None, "linear"):
        return x
    if activation == "relu":
        return g.node("Relu", [x], name)
    raise SettingError(f"layer {name}: activation {activation!r} has no ONNX writer")


def _preprocess(g, preprocessing, shape):
    x = g.node("Cast", [INPUT], PRE + "float", to=1)
    if preprocessing == "scale01":
        x = g.node("Mul", [x, g.const(PRE + "inv255", 1.0 / 255.0)], PRE + "scaled")
    elif preprocessing == "standardize":  # utils.image.standardize, per image
        axes = [1, 2, 3]
        mean = g.node("ReduceMean", [x], PRE + "mean", axes=axes, keepdims=1)
        centred = g.node("Sub", [x, mean], PRE + "centred")
        var = g.node("ReduceMean", [g.node("Mul", [centred, centred], PRE + "sq")], PRE + "var",
                     axes=axes, keepdims=1)
        floor = g.const(PRE + "floor", 1.0 / np.sqrt(float(np.prod(shape))))
        std = g.node("Max", [g.node("Sqrt", [var], PRE + "std"), floor], PRE + "std_floor")
        x = g.node("Div", [centred, std], PRE + "standardized")
    else:
        raise SettingError(f"unknown preprocessing {preprocessing!r}")
    return g.node("Transpose", [x], PRE + "nchw", perm=[0, 3, 1, 2])


def _layer(g, layer, inputs):
    """Append `layer`'s nodes; return the name of its output."""
    import keras

    from nets.batchnorm_folding import FoldedBatchNorm
    from nets.layers import L2Normalize, ScaledResidual

    L, name, x = keras.layers, layer.name, inputs[0] if inputs else None
    if isinstance(layer, (FoldedBatchNorm, L.Dropout)):
        return x
    if isinstance(layer, L.DepthwiseConv2D):  # before Conv2D: it is one in some Keras
        k = layer.kernel.numpy()  # (kh, kw, in, multiplier) -> (in*multiplier, 1, kh, kw)
        kh, kw, cin, mult = k.shape
        w = k.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
        ins = [x, g.const(name + "/W", w)]
        if layer.use_bias:
            ins.append(g.const(name + "/B", layer.bias.numpy()))
        y = g.node("Conv", ins, name + ("/conv" if layer.activation.__name__ != "linear"
                                         else ""), group=cin, kernel_shape=[kh, kw],
                   strides=list(layer.strides), dilations=list(layer.dilation_rate),
                   pads=_pads(layer, (kh, kw), layer.strides))
        return _activation(g, name, layer.activation.__name__, y)
    if isinstance(layer, L.Conv2D):
        k = layer.kernel.numpy()  # (kh, kw, in, out) -> (out, in, kh, kw)
        kh, kw = k.shape[:2]
        ins = [x, g.const(name + "/W", k.transpose(3, 2, 0, 1))]
        if layer.use_bias:
            ins.append(g.const(name + "/B", layer.bias.numpy()))
        if layer.groups != 1:
            raise SettingError(f"layer {name}: grouped convolution has no ONNX writer")
        act = layer.activation.__name__
        y = g.node("Conv", ins, name + ("/conv" if act != "linear" else ""),
                   kernel_shape=[kh, kw], strides=list(layer.strides),
                   dilations=list(layer.dilation_rate),
                   pads=_pads(layer, (kh, kw), layer.strides))
        return _activation(g, name, act, y)
    if isinstance(layer, L.BatchNormalization):  # unfolded: a per-channel affine map
        var = layer.moving_variance.numpy().astype(np.float64)
        scale = (layer.gamma.numpy() if layer.scale else 1.0) / np.sqrt(var + layer.epsilon)
        shift = (layer.beta.numpy() if layer.center else 0.0) - layer.moving_mean.numpy() * scale
        shape = (-1, 1, 1) if len(layer.input.shape) == 4 else (-1,)
        y = g.node("Mul", [x, g.const(name + "/scale", scale.reshape(shape))], name + "/mul")
        return g.node("Add", [y, g.const(name + "/shift", shift.reshape(shape))], name)
    if isinstance(layer, L.ReLU):
        if layer.negative_slope or layer.threshold:
            raise SettingError(f"layer {name}: leaky or thresholded ReLU has no ONNX writer")
        if layer.max_value is None:
            return g.node("Relu", [x], name)
        return g.node("Clip", [x, g.const(name + "/lo", 0.0),
                               g.const(name + "/hi", float(layer.max_value))], name)
    if isinstance(layer, L.Activation):
        return _activation(g, name, layer.activation.__name__, x)
    if isinstance(layer, L.MaxPooling2D):
        k, s = layer.pool_size, layer.strides
        return g.node("MaxPool", [x], name, kernel_shape=list(k), strides=list(s),
                      pads=_pads(layer, k, s))
    if isinstance(layer, L.Concatenate):
        rank = len(layer.output.shape)
        axis = {rank - 1: 1, 1: 2, 2: 3}[layer.axis % rank] if rank == 4 else layer.axis % rank
        return g.node("Concat", inputs, name, axis=axis)
    if isinstance(layer, ScaledResidual):
        scaled = g.node("Mul", [inputs[1], g.const(name + "/scale", layer.scale)],
                        name + "/scaled")
        return g.node("Add", [inputs[0], scaled], name)
    if isinstance(layer, L.GlobalAveragePooling2D):
        pooled = g.node("GlobalAveragePool", [x], name + "/pool")
        return g.node("Flatten", [pooled], name, axis=1)
    if isinstance(layer, L.Dense):
        ins = [x, g.const(name + "/W", layer.kernel.numpy())]
        if layer.use_bias:
            ins.append(g.const(name + "/B", layer.bias.numpy()))
        y = g.node("Gemm", ins, name + ("/gemm" if layer.activation.__name__ != "linear"
                                         else ""))
        return _activation(g, name, layer.activation.__name__, y)
    if isinstance(layer, L2Normalize):
        sq = g.node("ReduceSumSquare", [x], POST + "sumsq", axes=[1], keepdims=1)
        sq = g.node("Max", [sq, g.const(POST + "eps", layer.epsilon)], POST + "sumsq_floor")
        return g.node("Div", [x, g.node("Sqrt", [sq], POST + "norm")], OUTPUT)
    raise SettingError(f"layer {name} ({type(layer).__name__}) has no ONNX writer")


def fold_residual_scales(nodes, inits):
    """(nodes, inits) with each residual scale folded into the convolution before it:
    x + s * conv(y) becomes x + conv'(y), conv' having s times the weights and bias. Exact in
    float, and in int8 one multiplication (and one rounding) less per block. The convolution
    takes the product's output name, so the tensors the calibration table knows keep theirs."""
    from collections import Counter

    from onnx import numpy_helper

    consumers = Counter(i for n in nodes for i in n.input)
    producers = {n.output[0]: n for n in nodes}
    values = {t.name: t for t in inits}
    dropped_nodes, dropped_inits = set(), set()
    for mul in nodes:
        if mul.op_type != "Mul" or not mul.output[0].endswith("/scaled"):
            continue
        conv = producers.get(mul.input[0])
        if (conv is None or conv.op_type != "Conv" or len(conv.input) < 3
                or consumers[conv.output[0]] != 1 or mul.input[1] not in values):
            continue
        scale = numpy_helper.to_array(values[mul.input[1]]).astype(np.float32)
        for name in conv.input[1:3]:
            values[name].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(values[name]) * scale, name))
        conv.output[0] = mul.output[0]
        dropped_nodes.add(mul.name)
        dropped_inits.add(mul.input[1])
    return ([n for n in nodes if n.name not in dropped_nodes],
            [t for t in inits if t.name not in dropped_inits])


def keras_to_onnx(model, preprocessing):
    """An onnx.ModelProto computing `model` (a functional predict-mode FaceNet) on uint8 crops."""
    import keras
    import onnx
    from onnx import TensorProto, helper

    from nets.keras_shims import inbound_nodes, parent_operations

    h, w, c = (int(s) for s in model.input.shape[1:])
    g = GraphWriter()
    outputs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            outputs[layer.name] = _preprocess(g, preprocessing, (h, w, c))
            continue
        calls = inbound_nodes(layer)
        if len(calls) != 1:
            raise SettingError(f"layer {layer.name} is called {len(calls)} times; the ONNX "
                               f"writer takes each layer once")
        inputs = [outputs[p.name] for p in parent_operations(calls[0])]
        outputs[layer.name] = _layer(g, layer, inputs)
    last = outputs[model.layers[-1].name]
    if last != OUTPUT:
        g.node("Identity", [last], OUTPUT)
    nodes, inits = fold_residual_scales(g.nodes, g.inits)
    graph = helper.make_graph(
        nodes, f"facenet_{model.name}",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["batch", h, w, c])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT,
                                       ["batch", int(model.output.shape[-1])])],
        initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="facenet-keras", producer_version=str(GRAPH_VERSION))
    proto.ir_version = 8  # what ONNX Runtime 1.15+ reads; opset 17 needs at least 8
    onnx.checker.check_model(proto)
    return proto
