"""The accelerator distillation's parts that run anywhere: the bundle's int8 teacher weights and
WebP faces, the views rendered on the device (checked here with NumPy standing in for
jax.numpy: the same array calls), and the fold-1 score."""
import types

import numpy as np
import pytest

from benchmarks.distill_accelerated import (adam, best_accuracy, blend, render, standardize,
                                             warmup_cosine)
from benchmarks.distill_bundle import (pack_images, pack_weights, quantize, unpack_images,
                                       unpack_weights)

NP = types.SimpleNamespace(numpy=np)  # render(jax, ...) uses jax.numpy only


def params(n, **over):
    p = {"scale": np.ones(n), "angle": np.zeros(n), "dx": np.zeros(n), "dy": np.zeros(n),
         "flip": np.zeros(n, bool), "bright": np.ones(n), "contrast": np.ones(n),
         "sat": np.ones(n), "grey": np.zeros(n, bool), "mix": np.zeros(n, bool),
         "share": np.ones(n)}
    p.update({k: np.asarray(v) for k, v in over.items()})
    return p


def crops(n=2, size=140, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_plain_view_is_the_face_box_exactly():
    src = crops()
    view = render(NP, src, params(2), 112)  # the face box: the central 80% of 140 px
    np.testing.assert_allclose(view, src[:, 14:126, 14:126], atol=0.01)


def test_mirrored_view_is_the_face_box_mirrored():
    src = crops()
    view = render(NP, src, params(2, flip=[True, False]), 112)
    np.testing.assert_allclose(view[0], src[0, 14:126, 14:126][:, ::-1], atol=0.01)
    np.testing.assert_allclose(view[1], src[1, 14:126, 14:126], atol=0.01)


def test_half_scale_view_zooms_on_the_centre():
    src = crops(1)
    view = render(NP, src, params(1, scale=[0.5]), 112)  # 56 source pixels over 112
    np.testing.assert_allclose(view[0, ::2, ::2].mean(), src[0, 42:98, 42:98].mean(), atol=3)
    assert not np.allclose(view, render(NP, src, params(1), 112))


def test_grey_view_has_equal_channels_and_colour_views_do_not():
    src = crops()
    view = render(NP, src, params(2, grey=[True, False]), 112)
    assert np.allclose(view[0, ..., 0], view[0, ..., 2])
    assert not np.allclose(view[1, ..., 0], view[1, ..., 2])


def test_blend_mixes_only_the_drawn_views():
    views = np.stack([np.zeros((4, 4, 3)), np.full((4, 4, 3), 100.0)])
    out = blend(NP, views, params(2, mix=[True, False], share=[0.75, 0.75]))
    np.testing.assert_allclose(out[0], 25.0)  # 0.75 * 0 + 0.25 * the next view (rolled)
    np.testing.assert_allclose(out[1], 100.0)


def test_standardize_matches_the_predictors():
    from utils.image import standardize as numpy_standardize

    x = crops(3, 16).astype(np.float32)
    np.testing.assert_allclose(standardize(NP, x), numpy_standardize(x), rtol=1e-5, atol=1e-5)


def test_best_accuracy_is_the_best_threshold_over_all_pairs():
    rng = np.random.default_rng(1)
    same = rng.integers(0, 2, 200).astype(bool)
    d = rng.normal(np.where(same, 0.8, 1.2), 0.2)
    acc, thr = best_accuracy(d, same)
    brute = max(np.mean((d <= t) == same) for t in np.concatenate([[-1.0], d]))
    assert acc == pytest.approx(brute)
    assert np.mean((d <= thr) == same) == pytest.approx(acc)
    assert best_accuracy(np.array([0.1, 0.2, 0.9, 1.0]), [1, 1, 0, 0])[0] == 1.0


def test_quantize_keeps_each_channel_within_half_a_step():
    w = np.random.default_rng(2).normal(size=(3, 3, 8, 5)).astype(np.float32)
    w[..., 4] = 0.0  # a dead channel keeps a usable scale
    q, scale = quantize(w)
    assert q.dtype == np.int8 and scale.shape == (5,)
    assert np.all(np.abs(q.astype(np.float32) * scale - w) <= scale / 2 + 1e-7)
    assert np.all(q[..., 4] == 0)


def small_model(units=4):
    import keras

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(units, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_packed_weights_fill_the_same_network_and_refuse_another(tmp_path):
    model = small_model()
    for v in model.weights:
        v.assign(np.random.default_rng(3).normal(size=v.shape).astype(np.float32))
    path = str(tmp_path / "teacher.npz")
    pack_weights(model, path)
    copy = small_model()
    unpack_weights(copy, path)
    for a, b in zip(model.weights, copy.weights):
        tolerance = np.abs(a.numpy()).max() / 254 + 1e-6 if len(a.shape) >= 2 else 0
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=tolerance)
    with pytest.raises(ValueError, match="variable 0 .*conv"):
        unpack_weights(small_model(units=5), path)


def test_packed_weights_with_nan_are_refused(tmp_path):
    model = small_model()
    model.get_layer("bn").moving_variance.assign(np.full(4, np.nan, np.float32))
    path = str(tmp_path / "teacher.npz")
    pack_weights(model, path)
    with pytest.raises(ValueError, match="NaN"):
        unpack_weights(small_model(), path)


def test_packed_images_come_back_at_the_stored_size(tmp_path):
    from PIL import Image

    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        p = tmp_path / f"{i}.jpg"
        Image.new("RGB", (200, 200), colour).save(p)
        paths.append(str(p))
    pack_images(paths, str(tmp_path / "faces"), 140, 90)
    images = unpack_images(str(tmp_path / "faces"))
    assert images.shape == (3, 140, 140, 3) and images.dtype == np.uint8
    np.testing.assert_allclose(images.reshape(3, -1, 3).mean(axis=1),
                               [[200, 30, 30], [30, 200, 30], [30, 30, 200]], atol=4)


def test_the_rate_warms_up_then_decays_to_its_floor():
    rates = [warmup_cosine(f, 1e-3, 1e-6, 0.1) for f in np.linspace(0, 1, 101)]
    assert rates[0] == 0 and rates[10] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:11]))
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[-1] == pytest.approx(1e-6)


def test_adam_matches_keras_adam():
    import keras

    w0 = np.array([[0.5, -1.0], [2.0, 0.1]], np.float32)
    grads = [np.array([[0.1, -0.2], [0.3, 0.0]], np.float32) * k for k in (1, -2, 3)]
    var = keras.Variable(w0)
    opt = keras.optimizers.Adam(1e-2)
    params, m, v = [w0], [np.zeros_like(w0)], [np.zeros_like(w0)]
    for t, g in enumerate(grads, start=1):
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
        params, m, v = adam(params, [g], m, v, t, 1e-2)
    np.testing.assert_allclose(params[0], np.asarray(var.numpy()), rtol=1e-5, atol=1e-6)


def test_runs_that_continue_each_other_plot_in_a_row(tmp_path):
    import json

    from PIL import Image

    from benchmarks.distill_accelerated import plot_runs

    paths = []
    for k, accuracies in enumerate([(0.90, 0.95), (0.95, 0.97)]):
        history = [{"epochs": 10.0 * i, "fold1": a} for i, a in enumerate(accuracies)]
        paths.append(str(tmp_path / f"run{k}.json"))
        with open(paths[-1], "w") as f:
            json.dump({"history": history}, f)
    plot_runs(paths, str(tmp_path / "runs.png"))
    with Image.open(tmp_path / "runs.png") as im:
        assert im.size[0] > 300 and im.size[1] > 200


def test_a_missing_or_foreign_bundle_is_refused_with_what_to_do(tmp_path):
    import json

    from benchmarks.distill_accelerated import load_bundle

    with pytest.raises(SystemExit, match="make the bundle first.*distill_bundle"):
        load_bundle(str(tmp_path))
    (tmp_path / "bundle.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(SystemExit, match="format 99.*make the bundle again"):
        load_bundle(str(tmp_path))
