"""The training input: triplet batches `[anchors; positives; negatives]` as a tf.data pipeline.

Sampling is done up front in NumPy from a seed (so a run, and a resumed run, sees the same
batches); decoding (with PIL, the same code as prediction, so training and prediction see the
same pixels), letterboxing, flipping and preprocessing run in parallel inside tf.data.
Anchor and positive are two *different* images of one person (the original could draw the same
image twice); the negative is an image of another person.
"""
import collections
import threading

import numpy as np
import tensorflow as tf

from utils.annotation import AnnotationError
from utils.errors import SettingError
from utils.tf_preprocessing import preprocess_tf


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


def jitter_box(crop, scale, x, y):
    """A square-scaled sub-box of `crop` (or of the whole image): sides times `scale` (<= 1),
    placed at fractions `x`, `y` of the room left. (1, .5, .5) is `crop` itself."""
    if scale >= 1.0:
        return crop
    x0, y0, x1, y1 = crop or (0.0, 0.0, 1.0, 1.0)
    w, h = (x1 - x0) * scale, (y1 - y0) * scale
    left, top = x0 + (x1 - x0 - w) * x, y0 + (y1 - y0 - h) * y
    return (left, top, left + w, top + h)


class TripletImageLoader:
    """Decodes one training image exactly as prediction does (utils.image.prepare_image).

    An image that fails to decode is reported once, by name, and replaced by another image of
    the same person, so the batch keeps its triplet layout and training goes on.
    """

    def __init__(self, paths, labels, input_shape, crop=None, log=print):
        self.paths, self.labels = list(paths), np.asarray(labels)
        self.input_shape, self.crop, self.log = tuple(input_shape), crop, log
        self.bad = set()
        self.lock = threading.Lock()  # tf.data calls this from several threads

    def __call__(self, index, flip, jitter=(1.0, 0.5, 0.5)):
        from utils.errors import ImageLoadError
        from utils.image import prepare_image

        index = int(index)
        box = jitter_box(self.crop, *jitter)
        for i in self._candidates(index):
            if i in self.bad:
                continue
            try:
                image = prepare_image(self.paths[i], self.input_shape, True, box)
                return np.ascontiguousarray(image[:, ::-1] if flip else image)
            except ImageLoadError as e:
                with self.lock:
                    first_time = i not in self.bad
                    self.bad.add(i)
                if first_time:
                    self.log(f"warning: skipping an unreadable training image: {e}")
        raise ImageLoadError(f"no readable image left for class {self.labels[index]} "
                             f"(e.g. {self.paths[index]})")

    def _candidates(self, index):
        """`index`, then the other images of its person in file order after it (looked up only
        when `index` is unreadable, so the usual load pays nothing for the fallback)."""
        yield index
        same = np.flatnonzero(self.labels == self.labels[index])
        yield from (int(i) for i in np.roll(same, -int(np.argmax(same == index)))[1:])


def check_batch_size(batch_size):
    if batch_size < 3 or batch_size % 3:
        raise SettingError(f"batch_size must be a positive multiple of 3 (anchors, positives, "
                           f"negatives), got {batch_size}")


def triplet_dataset(paths, labels, num_classes, input_shape, batch_size, steps, epochs,
                    first_epoch=0, seed=0, augment=True, preprocessing="scale01",
                    anchor_indices=None, crop=None, replicas=1, crop_jitter=0.0, log=print):
    """Batches for epochs [first_epoch, epochs): (images, (one-hot, one-hot)) for the two outputs.

    Augmentation (`augment`): a horizontal flip half the time, as the original; with
    `crop_jitter` > 0 also a random sub-box of the face box, its side 1 - crop_jitter .. 1 of
    the box's, anywhere inside it.

    With `replicas` > 1 each batch is `replicas` triplet batches end to end, so that the equal
    slices a distribution strategy hands to its replicas are each `[anchors; positives;
    negatives]`.
    """
    if batch_size % (3 * replicas):
        raise SettingError(f"batch_size must be a multiple of 3 x {replicas} replicas, "
                           f"got {batch_size}")
    check_batch_size(batch_size)
    if not 0.0 <= crop_jitter < 1.0:
        raise SettingError(f"crop_jitter must be in [0, 1), got {crop_jitter}")
    sampler = TripletSampler(labels, seed, anchor_indices)
    order = np.concatenate([sampler.epoch(e, steps * replicas, batch_size // replicas)
                            for e in range(first_epoch, epochs)])
    flips = np.random.default_rng([seed, first_epoch, 1]).random(len(order)) < 0.5
    jitters = np.random.default_rng([seed, first_epoch, 2]).random((len(order), 3))
    jitters[:, 0] = 1.0 - crop_jitter * jitters[:, 0]
    if not augment:
        flips[:] = False
        jitters[:, 0] = 1.0  # the whole face box
    height, width = int(input_shape[0]), int(input_shape[1])
    loader = TripletImageLoader(paths, labels, (height, width, 3), crop, log)
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))

    def load(index, flip, jitter):
        image = tf.numpy_function(loader, [index, flip, jitter], tf.uint8, stateful=False)
        image = tf.ensure_shape(image, [height, width, 3])
        return preprocess_tf(image, preprocessing), tf.one_hot(label_table[index], num_classes)

    ds = tf.data.Dataset.from_tensor_slices((order, flips, jitters))
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
