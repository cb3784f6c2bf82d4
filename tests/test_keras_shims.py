"""The private Keras names this project relies on are still there and still do their job in the
installed Keras; a Keras outside the range they were written for is refused by name."""
import keras
import numpy as np
import pytest

from nets import keras_shims
from nets.keras_shims import KerasShimError


def test_call_graph_shims_see_who_feeds_whom():
    x_in = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, name="conv")
    norm = keras.layers.BatchNormalization(name="bn")
    y = norm(conv(x_in))
    keras.Model(x_in, y)
    (call,) = keras_shims.inbound_nodes(norm)
    assert keras_shims.parent_operations(call) == [conv]
    assert len(keras_shims.outbound_nodes(conv)) == 1 and keras_shims.outbound_nodes(norm) == []
    keras.layers.ReLU()(conv.output)  # a second consumer of the conv
    assert len(keras_shims.outbound_nodes(conv)) == 2
    assert len(keras_shims.inbound_nodes(conv)) == 1


def test_a_keras_outside_the_range_or_without_the_name_is_refused(monkeypatch):
    layer = keras.layers.Dense(2)
    monkeypatch.setattr(keras, "__version__", "4.0.0")
    with pytest.raises(KerasShimError, match=r"inbound_nodes uses Keras's private "
                                             r"`_inbound_nodes`, written for Keras >=3\.3,<4; "
                                             r"this is Keras 4\.0\.0"):
        keras_shims.inbound_nodes(layer)
    monkeypatch.setattr(keras, "__version__", "3.2.1")
    with pytest.raises(KerasShimError, match="this is Keras 3.2.1"):
        keras_shims.outbound_nodes(layer)
    monkeypatch.setattr(keras, "__version__", "3.16.0.dev2026")
    assert keras_shims.outbound_nodes(layer) == []
    with pytest.raises(KerasShimError, match=r"Keras 3\.16\.0\.dev2026 has no `parent_nodes` on "
                                             r"object"):
        keras_shims.parent_operations(object())


def tiny_model():
    x_in = keras.Input((4,))
    model = keras.Model(x_in, keras.layers.Dense(2)(x_in))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_fit_still_calls_what_the_multiworker_shims_replace():
    """`fit` must call the model's `_maybe_symbolic_build` (the shim builds from the local batch
    through `_symbolic_build(data_batch=...)`) and reduce its logs through
    `_collective_all_reduce_multi_worker`; otherwise the shims would change nothing, in silence."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    model = tiny_model()
    x = np.ones((4, 4), np.float32)
    y = np.zeros((4, 2), np.float32)
    sample = (x[:2], y[:2])
    builds, reductions = [], []
    keras_reduce = trainer._collective_all_reduce_multi_worker
    with keras_shims.Patches() as patches:
        keras_build = model._symbolic_build
        patches.set(model, "_symbolic_build",
                    lambda **kw: builds.append(kw["data_batch"]) or keras_build(**kw))
        keras_shims.build_from_local_batch(patches, model, tf.distribute.get_strategy(), sample)
        keras_shims.reduce_logs_per_worker(patches)
        shim_reduce = trainer._collective_all_reduce_multi_worker
        assert shim_reduce(None) is False
        patches.set(trainer, "_collective_all_reduce_multi_worker",
                    lambda s: reductions.append(s) or shim_reduce(s))
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert len(builds) == 1 and builds[0] is sample
    assert reductions
    # fit returned: Keras's own functions are back
    assert trainer._collective_all_reduce_multi_worker is keras_reduce
    assert "_maybe_symbolic_build" not in vars(model) and "_symbolic_build" not in vars(model)


def test_patches_are_undone_when_the_block_fails():
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer._collective_all_reduce_multi_worker
    with pytest.raises(RuntimeError, match="fit failed"):
        with keras_shims.Patches() as patches:
            keras_shims.reduce_logs_per_worker(patches)
            assert trainer._collective_all_reduce_multi_worker is not keras_reduce
            raise RuntimeError("fit failed")
    assert trainer._collective_all_reduce_multi_worker is keras_reduce


def test_prepare_multiworker_fit_patches_nothing_under_another_strategy():
    import tensorflow as tf

    from facenet.training.distribute import prepare_multiworker_fit

    model = tiny_model()
    with prepare_multiworker_fit(model, tf.distribute.get_strategy(), lambda: 1 / 0) as patches:
        assert "_maybe_symbolic_build" not in vars(model)  # and no batch was asked for
    assert patches._undo == []
