"""The ONNX graphs of MTCNN's networks compute what the mtcnn package's Keras networks do."""
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("mtcnn", reason="the graphs are written from the mtcnn package's weights")

from facenet.mtcnn_build import OUTPUTS, check_weights, mtcnn_to_onnx  # noqa: E402
from facenet.mtcnn_onnx import package_weight_files  # noqa: E402
from utils.errors import WeightFileError  # noqa: E402

SHAPES = {"pnet": (2, 37, 51, 3), "rnet": (5, 24, 24, 3), "onet": (5, 48, 48, 3)}


def weights(net):
    import joblib

    return joblib.load(package_weight_files()[net])


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_each_graph_matches_the_packages_network_on_random_inputs(net):
    import importlib

    from facenet.engine import make_session

    module = importlib.import_module(f"mtcnn.network.{net}")
    keras_net = getattr(module, net[0].upper() + "Net")()
    keras_net.build()
    keras_net.set_weights(weights(net))
    session = make_session(mtcnn_to_onnx(net, weights(net)).SerializeToString())
    # the package's inputs: pixels scaled to [-1, 1]; PNet's of any size (odd ones: the
    # "same" max pooling pads after)
    x = np.random.default_rng(0).uniform(-1, 1, SHAPES[net]).astype(np.float32)
    got = session.run(None, {"images": x})
    want = [t.numpy() for t in keras_net(x)]
    assert [o.name for o in session.get_outputs()] == OUTPUTS[net]
    for name, a, b in zip(OUTPUTS[net], got, want):
        assert a.shape == b.shape, name
        assert np.abs(a - b).max() < 1e-5, (name, np.abs(a - b).max())


def test_weights_of_the_wrong_shape_name_the_file_and_the_array():
    bad = weights("rnet")
    bad[9] = bad[9][:100]  # fc4's kernel cut short
    with pytest.raises(WeightFileError, match=r"rnet.lz4: array 9 of rnet is float32 \(100, "
                                              r"128\), expected finite float \(576, 128\)"):
        check_weights("rnet", bad, "rnet.lz4")
    with pytest.raises(WeightFileError, match="r.lz4: expected a list of 21 arrays for onet"):
        check_weights("onet", bad, "r.lz4")
    nan = weights("pnet")
    nan[0] = np.full_like(nan[0], np.nan)
    with pytest.raises(WeightFileError, match="array 0 of pnet"):
        check_weights("pnet", nan, "p.lz4")
