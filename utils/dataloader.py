"""The training input: triplet batches `[anchors; positives; negatives]` as a tf.data pipeline.

Sampling is done up front in NumPy from a seed (so a run, and a resumed run, sees the same
batches); decoding, letterboxing, flipping and preprocessing run in parallel inside tf.data.
Anchor and positive are two *different* images of one person (the original could draw the same
image twice); the negative is an image of another person.
"""
import collections

import numpy as np
import tensorflow as tf

from utils.annotation import AnnotationError


class TripletSampler:
    """Draws triplet indices into `labels`. Anchors come from `anchor_indices` (default: all),
    positives and negatives from every index: validation anchors are held-out images."""

    def __init__(self, labels, seed=0, anchor_indices=None):
        self.labels = np.asarray(labels)
        by_class = collections.defaultdict(list)
        for i, c in enumerate(self.labels):
            by_class[int(c)].append(i)
        self.by_class = {c: np.array(v) for c, v in by_class.items()}
        self.classes = np.array(sorted(self.by_class))
        anchors = collections.defaultdict(list)
        for i in (range(len(self.labels)) if anchor_indices is None else anchor_indices):
            if len(self.by_class[int(self.labels[i])]) >= 2:
                anchors[int(self.labels[i])].append(i)
        self.anchor_by_class = {c: np.array(v) for c, v in anchors.items()}
        self.anchor_classes = np.array(sorted(self.anchor_by_class))
        if len(self.anchor_classes) == 0 or len(self.classes) < 2:
            raise AnnotationError(
                f"triplets need 2 or more classes and one class with 2 or more images; got "
                f"{len(self.classes)} classes, {len(self.anchor_classes)} with 2 or more images")
        self.seed = seed

    def batch(self, rng, n):
        """Indices of one batch: n anchors, then their n positives, then n negatives."""
        anchors, positives, negatives = [], [], []
        for c in rng.choice(self.anchor_classes, n):
            a = rng.choice(self.anchor_by_class[c])
            same = self.by_class[c]
            p = rng.choice(same[same != a])
            others = self.classes[self.classes != c]
            negatives.append(rng.choice(self.by_class[int(rng.choice(others))]))
            anchors.append(a)
            positives.append(p)
        return np.array(anchors + positives + negatives)

    def epoch(self, epoch, steps, batch_size):
        rng = np.random.default_rng([self.seed, epoch])
        return np.concatenate([self.batch(rng, batch_size // 3) for _ in range(steps)])


def letterbox_tf(image, height, width):
    """The original's letterbox in TensorFlow: keep aspect, bicubic, centre on grey 128."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(height / shape[0], width / shape[1])
    nh = tf.maximum(1, tf.cast(tf.round(shape[0] * scale), tf.int32))
    nw = tf.maximum(1, tf.cast(tf.round(shape[1] * scale), tf.int32))
    resized = tf.image.resize(tf.cast(image, tf.float32), [nh, nw], method="bicubic",
                              antialias=True)
    resized = tf.clip_by_value(resized, 0.0, 255.0)
    top, left = (height - nh) // 2, (width - nw) // 2
    padded = tf.pad(resized - 128.0, [[top, height - nh - top], [left, width - nw - left], [0, 0]])
    return tf.ensure_shape(padded + 128.0, [height, width, 3])


def crop_tf(image, box):
    """Crop a box given as fractions (x0, y0, x1, y1) of the image size."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    x0, y0, x1, y1 = box
    top = tf.cast(tf.round(y0 * shape[0]), tf.int32)
    left = tf.cast(tf.round(x0 * shape[1]), tf.int32)
    bottom = tf.maximum(top + 1, tf.cast(tf.round(y1 * shape[0]), tf.int32))
    right = tf.maximum(left + 1, tf.cast(tf.round(x1 * shape[1]), tf.int32))
    return image[top:bottom, left:right]


def preprocess_tf(x, preprocessing):
    if preprocessing == "scale01":
        return x / 255.0
    if preprocessing == "standardize":
        mean = tf.reduce_mean(x)
        std = tf.math.reduce_std(x)
        return (x - mean) / tf.maximum(std, 1.0 / tf.sqrt(tf.cast(tf.size(x), tf.float32)))
    raise ValueError(f"unknown preprocessing {preprocessing!r}; choose scale01 or standardize")


def check_batch_size(batch_size):
    if batch_size < 3 or batch_size % 3:
        raise ValueError(f"batch_size must be a positive multiple of 3 (anchors, positives, "
                         f"negatives), got {batch_size}")


def triplet_dataset(paths, labels, num_classes, input_shape, batch_size, steps, epochs,
                    first_epoch=0, seed=0, augment=True, preprocessing="scale01",
                    anchor_indices=None, crop=None, replicas=1):
    """Batches for epochs [first_epoch, epochs): (images, (one-hot, one-hot)) for the two outputs.

    With `replicas` > 1 each batch is `replicas` triplet batches end to end, so that the equal
    slices a distribution strategy hands to its replicas are each `[anchors; positives;
    negatives]`.
    """
    if batch_size % (3 * replicas):
        raise ValueError(f"batch_size must be a multiple of 3 x {replicas} replicas, "
                         f"got {batch_size}")
    check_batch_size(batch_size)
    sampler = TripletSampler(labels, seed, anchor_indices)
    order = np.concatenate([sampler.epoch(e, steps * replicas, batch_size // replicas)
                            for e in range(first_epoch, epochs)])
    flips = np.random.default_rng([seed, first_epoch, 1]).random(len(order)) < 0.5
    if not augment:
        flips[:] = False
    height, width = int(input_shape[0]), int(input_shape[1])
    path_table = tf.constant(list(paths))
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))

    def load(index, flip):
        data = tf.io.read_file(path_table[index])
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        if crop is not None:
            image = crop_tf(image, crop)
        x = letterbox_tf(image, height, width)
        x = tf.cond(flip, lambda: tf.image.flip_left_right(x), lambda: x)
        return preprocess_tf(x, preprocessing), tf.one_hot(label_table[index], num_classes)

    ds = tf.data.Dataset.from_tensor_slices((order, flips))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda x, y: (x, (y, y)))
    return ds.prefetch(tf.data.AUTOTUNE)


def split_lines(entries, val_split=0.01, seed=10101):
    """Shuffle with the original's seed and hold out `val_split` of the lines for validation."""
    order = np.random.RandomState(seed).permutation(len(entries))
    entries = [entries[i] for i in order]
    num_val = max(1, int(len(entries) * val_split)) if val_split > 0 else 0
    return entries[num_val:], entries[:num_val]
