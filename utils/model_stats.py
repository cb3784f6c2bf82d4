"""Model size and cost: parameter counts and FLOPs (2 x multiply-adds of convolutions and dense
layers, the convention of the original's summary.py figures)."""
import logging

import numpy as np

logger = logging.getLogger(__name__)


def layer_flops(layer):
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, h, w, c = layer.output.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * kh * kw * c
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * kh * kw * layer.input.shape[-1] * c_out
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * layer.units
    return 0


def model_stats(model):
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(model.count_params())
    per_layer = [layer_flops(layer) for layer in model.layers]
    flops = int(sum(per_layer))
    logger.debug(f"{model.name}: FLOPs counted in {sum(f > 0 for f in per_layer)} of "
                 f"{len(per_layer)} layers (convolutions and dense layers; the others add none)")
    return {"params": total, "trainable_params": trainable,
            "non_trainable_params": total - trainable, "flops": flops}
