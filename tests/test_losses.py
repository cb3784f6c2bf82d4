"""The triplet loss against plain Python, by the original's formula in docs/design.md."""
import math

import numpy as np
import pytest

from nets.losses import triplet_loss


def numpy_triplet(emb, alpha=0.2):
    n = len(emb) // 3
    a, p, neg = emb[:n], emb[n:2 * n], emb[2 * n:]
    losses = []
    for i in range(n):
        d_ap = math.sqrt(sum((a[i] - p[i]) ** 2))
        d_an = math.sqrt(sum((a[i] - neg[i]) ** 2))
        losses.append(d_ap - d_an + alpha)
    active = [v for v in losses if v > 0]
    return sum(active) / max(1, len(active))


def unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def batch_loss(emb):
    """The loss of a batch: the per-sample values (all equal) Keras averages."""
    values = np.asarray(triplet_loss()(None, emb))
    assert values.shape == (len(emb),) and np.all(values == values[0])
    return float(values.mean())


def test_triplet_loss_matches_numpy_on_random_embeddings():
    emb = unit(np.random.default_rng(0).normal(size=(30, 128))).astype("float32")
    got = batch_loss(emb)
    assert got == pytest.approx(numpy_triplet(emb.astype("float64")), rel=1e-5)
    assert 0 < got


def test_triplet_loss_no_active_triplet_is_zero():
    a = unit(np.eye(4, 16)[:4] + 0.0)
    emb = np.concatenate([a, a + 0.001, -a]).astype("float32")  # positives close, negatives far
    assert numpy_triplet(emb) == 0
    assert batch_loss(emb) == pytest.approx(0.0, abs=1e-7)


def test_triplet_loss_all_active_is_the_mean():
    a = unit(np.eye(4, 16))
    emb = np.concatenate([a, -a, a + 0.01]).astype("float32")  # positives far, negatives close
    expected = numpy_triplet(emb.astype("float64"))
    assert expected > 2  # each is about 2 - 0.01 + 0.2
    assert batch_loss(emb) == pytest.approx(expected, rel=1e-5)
