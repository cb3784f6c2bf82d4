"""The triplet loss of the original, by its formula (docs/design.md#training-math)."""
from keras import ops


def triplet_loss(alpha=0.2):
    """Loss on a batch laid out as [anchors; positives; negatives] of equal thirds.

    l = ||a - p|| - ||a - n|| + alpha (Euclidean, not squared);
    loss = sum(max(l, 0)) / max(1, number of triplets with l > 0).
    """

    def _triplet_loss(y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")  # distances in float32 under mixed precision
        n = ops.shape(y_pred)[0] // 3
        anchor, positive, negative = y_pred[:n], y_pred[n:2 * n], y_pred[2 * n:3 * n]
        # max(., 1e-12) keeps the gradient finite if two embeddings coincide; it changes no
        # distance above 1e-6.
        pos_dist = ops.sqrt(ops.maximum(ops.sum(ops.square(anchor - positive), axis=-1), 1e-12))
        neg_dist = ops.sqrt(ops.maximum(ops.sum(ops.square(anchor - negative), axis=-1), 1e-12))
        basic = pos_dist - neg_dist + alpha
        active = ops.sum(ops.cast(basic > 0, y_pred.dtype))
        loss = ops.sum(ops.maximum(basic, 0.0)) / ops.maximum(active, 1.0)
        # One value per sample, all equal: Keras averages it back to `loss`, and (unlike a
        # scalar, which it passes through) divides it by the replicas under tf.distribute,
        # so each replica's triplets weigh as on one device.
        return ops.ones_like(y_pred[:, 0]) * loss

    _triplet_loss.__name__ = "triplet_loss"
    return _triplet_loss
