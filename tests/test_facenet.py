"""The FaceNet models of each backbone carry the original's layer names (docs/design.md),
parameter counts and FLOPs, and both outputs; bad settings name the allowed values."""
import pytest

from nets.facenet import facenet
from utils.model_stats import model_stats


def spec_mobilenet_names():
    names = ["conv1", "conv1_bn", "conv1_relu"]
    for n in range(1, 14):
        for kind in ("dw", "pw"):
            names += [f"conv_{kind}_{n}", f"conv_{kind}_{n}_bn", f"conv_{kind}_{n}_relu"]
    return names + ["Dropout", "Bottleneck", "BatchNorm_Bottleneck"]


def conv(name):
    return [name, f"{name}_BatchNorm", f"{name}_Activation"]


def spec_inception_names():
    names = []
    for c in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
              "Conv2d_4a_3x3", "Conv2d_4b_3x3"):
        names += conv(c)
    names.append("MaxPool_3a_3x3")
    branches = {
        "Block35": [["Conv2d_1x1"], ["Conv2d_0a_1x1", "Conv2d_0b_3x3"],
                    ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_0c_3x3"]],
        "Block17": [["Conv2d_1x1"], ["Conv2d_0a_1x1", "Conv2d_0b_1x7", "Conv2d_0c_7x1"]],
        "Block8": [["Conv2d_1x1"], ["Conv2d_0a_1x1", "Conv2d_0b_1x3", "Conv2d_0c_3x1"]],
    }
    for block, count in (("Block35", 5), ("Block17", 10), ("Block8", 6)):
        for i in range(1, count + 1):
            for b, convs in enumerate(branches[block]):
                for c in convs:
                    names += conv(f"{block}_{i}_Branch_{b}_{c}")
            names += [f"{block}_{i}_Concatenate", f"{block}_{i}_Conv2d_1x1"]
            if not (block == "Block8" and i == 6):
                names.append(f"{block}_{i}_Activation")
    names += conv("Mixed_6a_Branch_0_Conv2d_1a_3x3")
    for c in ("Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"):
        names += conv(f"Mixed_6a_Branch_1_{c}")
    names += ["Mixed_6a_Branch_2_MaxPool_1a_3x3", "Mixed_6a"]
    for c in ("Branch_0_Conv2d_0a_1x1", "Branch_0_Conv2d_1a_3x3", "Branch_1_Conv2d_0a_1x1",
              "Branch_1_Conv2d_1a_3x3", "Branch_2_Conv2d_0a_1x1", "Branch_2_Conv2d_0b_3x3",
              "Branch_2_Conv2d_1a_3x3"):
        names += conv(f"Mixed_7a_{c}")
    names += ["Mixed_7a_Branch_3_MaxPool_1a_3x3", "Mixed_7a"]
    return names + ["AvgPool", "Dropout", "Bottleneck", "Bottleneck_BatchNorm"]


# Layers of ours with no counterpart in the original (it used unnamed or Lambda layers there).
OURS = ("input_image", "Embedding", "AvgPool", "ScaledResidual")


@pytest.fixture(scope="module")
def models():
    return {b: facenet(backbone=b, mode="predict") for b in ("mobilenet", "inception_resnetv1")}


@pytest.mark.parametrize("backbone,expected", [("mobilenet", spec_mobilenet_names),
                                               ("inception_resnetv1", spec_inception_names)])
def test_layer_names_are_exactly_specs(models, backbone, expected):
    names = [layer.name for layer in models[backbone].layers]
    assert len(names) == len(set(names))
    ours = {n for n in names if not any(n == o or n.endswith(o) for o in OURS)}
    spec = {n for n in expected() if n != "AvgPool"}
    assert ours == spec
    weighted = {layer.name for layer in models[backbone].layers if layer.weights}
    assert weighted <= set(expected())


@pytest.mark.parametrize("backbone,params,trainable,gflops", [
    ("mobilenet", 3_360_320, 3_338_176, 0.58), ("inception_resnetv1", 22_808_144, 22_779_312, 2.83)])
def test_parameter_counts_and_flops(models, backbone, params, trainable, gflops):
    stats = model_stats(models[backbone])
    assert stats["params"] == params
    assert stats["trainable_params"] == trainable
    assert round(stats["flops"] / 1e9, 2) == gflops


@pytest.mark.parametrize("backbone", ["mobilenet", "inception_resnetv1"])
def test_train_mode_outputs_and_other_input_sizes(backbone):
    model = facenet((112, 112, 3), num_classes=7, backbone=backbone, mode="train")
    assert model.output_names == ["Softmax", "Embedding"]
    assert [tuple(o.shape) for o in model.outputs] == [(None, 7), (None, 128)]
    predict = facenet((112, 112, 3), backbone=backbone, mode="predict")
    assert model.count_params() == predict.count_params() + 128 * 7 + 7
    assert predict.output.shape[-1] == 128 and predict.layers[-1].name == "Embedding"


def test_bad_settings_name_the_allowed_values():
    with pytest.raises(ValueError, match="mobilenet"):
        facenet(backbone="resnet50", mode="predict")
    with pytest.raises(ValueError, match="predict"):
        facenet(mode="serve")
    with pytest.raises(ValueError, match="at least 75"):
        facenet((64, 64, 3), backbone="inception_resnetv1", mode="predict")
    with pytest.raises(ValueError, match="num_classes"):
        facenet(mode="train")
