"""Triplet loss, learning-rate schedules and batch fit, against the original's formulas
(docs/design.md) in plain Python."""
import math

import numpy as np
import pytest

from nets.facenet_training import fit_learning_rates, get_lr_scheduler, lr_fit_notes, triplet_loss


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


def spec_cos(lr, min_lr, total, it):
    warmup_total = min(max(0.1 * total, 1), 3)
    warmup_start = max(0.1 * lr, 1e-6)
    no_aug = min(max(0.3 * total, 1), 15)
    if it <= warmup_total:
        return (lr - warmup_start) * (it / warmup_total) ** 2 + warmup_start
    if it >= total - no_aug:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (
        1 + math.cos(math.pi * (it - warmup_total) / (total - warmup_total - no_aug)))


def spec_step(lr, min_lr, total, it):
    decay = (min_lr / lr) ** (1 / 9)
    return lr * decay ** (it // (total / 10))


@pytest.mark.parametrize("total", [1, 3, 10, 100])
@pytest.mark.parametrize("kind,reference", [("cos", spec_cos), ("step", spec_step)])
def test_schedules_follow_spec_at_every_epoch(total, kind, reference):
    lr, min_lr = 1e-3, 1e-5
    schedule = get_lr_scheduler(kind, lr, min_lr, total)
    values = [schedule(it) for it in range(total)]
    assert values == pytest.approx([reference(lr, min_lr, total, it) for it in range(total)],
                                   rel=1e-12)
    assert all(min_lr * 0.999 <= v <= lr * 1.001 for v in values)


def test_cos_schedule_shape_over_100_epochs():
    s = get_lr_scheduler("cos", 1e-3, 1e-5, 100)
    assert s(0) == pytest.approx(1e-4) and s(3) == pytest.approx(1e-3)
    assert s(85) == s(99) == 1e-5
    assert s(40) > s(60) > s(80)


@pytest.mark.parametrize("batch,optimizer,expected", [
    (3, "adam", (3e-4, 3e-6)), (48, "adam", (7.5e-4, 7.5e-6)), (96, "adam", (1e-3, 1e-5)),
    (960, "adam", (1e-3, 1e-5)), (3, "sgd", (5e-4, 5e-6)), (48, "sgd", (7.5e-4, 7.5e-6)),
    (96, "sgd", (1.5e-3, 1.5e-5)), (960, "sgd", (1.5e-2, 1.5e-4))])
def test_batch_fit(batch, optimizer, expected):
    assert fit_learning_rates(batch, 1e-3, 1e-5, optimizer) == pytest.approx(expected, rel=1e-12)


def test_clipped_rates_are_named():
    assert lr_fit_notes(48, 1e-3, 1e-5, "adam") == []  # 7.5e-4 and 7.5e-6: inside the limits
    notes = lr_fit_notes(48, 1e-3, 1e-4, "adam")  # 7.5e-5 asked, Adam's tail is capped at 1e-5
    assert len(notes) == 1 and notes[0].startswith("--min-lr 0.0001") and "using 1e-05" in notes[0]
    notes = lr_fit_notes(960, 1e-3, 1e-5, "adam")
    assert [n.split()[0] for n in notes] == ["--init-lr", "--min-lr"]


def test_unknown_names_are_rejected_with_choices():
    with pytest.raises(ValueError, match="cos"):
        get_lr_scheduler("linear", 1e-3, 1e-5, 10)
    with pytest.raises(ValueError, match="adam"):
        fit_learning_rates(96, 1e-3, 1e-5, "rmsprop")
