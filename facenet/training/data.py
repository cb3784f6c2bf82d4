"""The training input: the annotation's lines, the validation split, and triplet batches
`[anchors; positives; negatives]` as a tf.data pipeline.

Each epoch's triplets, flips and crop jitters are drawn when the pipeline reaches that epoch,
from (seed, epoch) alone: a resumed run sees the batches the uninterrupted run would have, and
memory does not grow with the number of epochs. Files are read, decoded (JPEG, PNG), cropped
and letterboxed as TensorFlow ops in one parallel map, on tf.data's threads, free of Python's
lock, then flipped and preprocessed a batch at a time. A file the graph cannot decode to the
pixels PIL gives (other formats and modes, EXIF rotation; told by its header) goes to PIL, the
code prediction uses; one it fails on (gone, damaged) sends its batch to a careful image-by-image
pass, where PIL replaces an unreadable image with another of the same person.
Anchor and positive are two *different* images of one person (the original could draw the same
image twice); the negative is an image of another person.
"""
import contextlib
import logging
import os
import threading

import numpy as np
import tensorflow as tf

from utils.annotation import AnnotationError
from utils.errors import SettingError
from utils.tf_preprocessing import crop_fraction_tf, decode_tf, letterbox_tf, preprocess_tf

logger = logging.getLogger(__name__)

# The library's errors raised inside tf.data's Python functions, newest last: TensorFlow hands
# them to the caller as an OpError wrapping a Python traceback.
_raised = []
_raised_lock = threading.Lock()


def raised_in_pipeline(error):
    """Remember an error a tf.data Python function is about to raise; returns it."""
    with _raised_lock:
        _raised.append(error)
        del _raised[:-8]
    return error


@contextlib.contextmanager
def pipeline_errors():
    """Around the code that runs a dataset (model.fit): an error of the library raised inside
    one of its Python functions reaches the caller as itself, in one line, not as the 45-line
    tf.data traceback that wraps it."""
    try:
        yield
    except tf.errors.OpError as e:
        with _raised_lock:
            ours = next((err for err in reversed(_raised) if str(err) in str(e)), None)
            _raised.clear()
        if ours is None:
            raise
        raise ours from None


def group(keys, size):
    """(members, starts, counts): the indices of `keys` (ints in [0, size)) grouped by key, in
    their order; key k's are members[starts[k]:starts[k] + counts[k]]."""
    members = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=size)
    return members, np.cumsum(counts) - counts, counts


class TripletSampler:
    """Draws triplet indices into `labels`, each in constant time: a class, an image of it,
    another image of it, then another class by an offset from the first and an image of that.
    Anchors come from `anchor_indices` (default: all), positives and negatives from every
    index: validation anchors are held-out images."""

    def __init__(self, labels, seed=0, anchor_indices=None):
        self.seed = seed
        self.classes, klass = np.unique(np.asarray(labels), return_inverse=True)
        self.klass = klass.ravel()  # each image's place in the sorted classes
        self.members, self.starts, self.counts = group(self.klass, len(self.classes))
        self.rank = np.empty(len(self.klass), np.int64)  # each image's place in its class
        self.rank[self.members] = np.arange(len(self.klass)) - self.starts[self.klass[self.members]]
        anchors = np.arange(len(self.klass)) if anchor_indices is None else \
            np.asarray(anchor_indices, np.int64)
        anchors = anchors[self.counts[self.klass[anchors]] >= 2]
        self.anchor_classes = np.unique(self.klass[anchors])
        where = np.searchsorted(self.anchor_classes, self.klass[anchors])
        order, self.anchor_starts, self.anchor_counts = group(where, len(self.anchor_classes))
        self.anchors = anchors[order]
        if len(self.anchor_classes) == 0 or len(self.classes) < 2:
            raise AnnotationError(
                f"triplets need 2 or more classes and one class with 2 or more images; got "
                f"{len(self.classes)} classes, {len(self.anchor_classes)} with 2 or more images")

    def triplets(self, rng, n):
        """(anchors, positives, negatives), n of each."""
        k = rng.integers(len(self.anchor_classes), size=n)
        anchors = self.anchors[self.anchor_starts[k] + rng.integers(self.anchor_counts[k])]
        c = self.anchor_classes[k]
        other = (self.rank[anchors] + 1 + rng.integers(self.counts[c] - 1)) % self.counts[c]
        positives = self.members[self.starts[c] + other]
        neg = (c + 1 + rng.integers(len(self.classes) - 1, size=n)) % len(self.classes)
        negatives = self.members[self.starts[neg] + rng.integers(self.counts[neg])]
        return anchors, positives, negatives

    def epoch(self, epoch, steps, batch_size):
        """One epoch's indices from (seed, epoch): `steps` batches, each n anchors, then their n
        positives, then n negatives."""
        rng = np.random.default_rng([self.seed, epoch])
        n = batch_size // 3
        a, p, neg = (x.reshape(steps, 1, n) for x in self.triplets(rng, steps * n))
        return np.concatenate([a, p, neg], axis=1).ravel()


def jitter_box(crop, scale, x, y):
    """Square-scaled sub-boxes of `crop` (or of the whole image): sides times `scale` (<= 1),
    placed at fractions `x`, `y` of the room left; arrays give one box each. (1, .5, .5) is
    `crop` itself, to the bit."""
    x0, y0, x1, y1 = crop or (0.0, 0.0, 1.0, 1.0)
    scale = np.asarray(scale, np.float64)
    w, h = (x1 - x0) * scale, (y1 - y0) * scale
    left, top = x0 + (x1 - x0 - w) * x, y0 + (y1 - y0 - h) * y
    return tuple(np.where(scale >= 1.0, whole, part)[()]
                 for whole, part in zip((x0, y0, x1, y1), (left, top, left + w, top + h)))


class PilDecoder:
    """Decodes with PIL (utils.image.load_image) what the graph decoder leaves.

    An image that fails to decode is reported once, by name, and replaced by another image of
    the same person, so the batch keeps its triplet layout and training goes on.
    """

    def __init__(self, paths, labels):
        self.paths, self.labels = list(paths), np.asarray(labels)
        self.bad = set()
        self.lock = threading.Lock()  # tf.data calls this from several threads

    def __call__(self, index):
        from utils.errors import ImageLoadError
        from utils.image import load_image

        index = int(index)
        for i in self._candidates(index):
            if i in self.bad:
                continue
            try:
                return np.asarray(load_image(self.paths[i]), dtype=np.uint8)
            except ImageLoadError as e:
                with self.lock:
                    first_time = i not in self.bad
                    self.bad.add(i)
                if first_time:
                    logger.warning(f"skipping an unreadable training image: {e}")
        raise raised_in_pipeline(ImageLoadError(
            f"no readable image left for class {self.labels[index]} (e.g. "
            f"{self.paths[index]}): every image of this person failed to decode (named above); "
            f"fix or remove them and run txt_annotation.py again"))

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


def triplet_plan(sampler, steps, batch_size, epochs, first_epoch=0, augment=True, crop=None,
                 crop_jitter=0.0, replicas=1):
    """(index, flip, box) per image for epochs [first_epoch, epochs), each epoch drawn from
    (seed, epoch) when the dataset reaches it; `box` is the face box, jittered, as fractions."""
    def draw(epoch):
        order = sampler.epoch(int(epoch), steps * replicas, batch_size // replicas)
        flips = np.random.default_rng([sampler.seed, epoch, 1]).random(len(order)) < 0.5
        jitters = np.random.default_rng([sampler.seed, epoch, 2]).random((len(order), 3))
        scale = 1.0 - crop_jitter * jitters[:, 0]
        if not augment:
            flips[:] = False
            scale[:] = 1.0  # the whole face box
        return order, flips, np.stack(jitter_box(crop, scale, jitters[:, 1], jitters[:, 2]), 1)

    def epoch_plan(epoch):
        order, flips, boxes = tf.numpy_function(draw, [epoch], [tf.int64, tf.bool, tf.float64],
                                                stateful=False)
        return tf.data.Dataset.from_tensor_slices((order, flips, tf.ensure_shape(boxes, [None, 4])))

    return tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_plan)


class TrainingImages:
    """The annotation's files as tensors: read and decoded as TensorFlow ops, or by PIL. Built
    once, outside the pipeline's functions, which capture its path table (a constant made
    inside them would copy every path into each function's graph)."""

    def __init__(self, paths, labels):
        from utils.image import max_pixels

        self.decoder = PilDecoder(paths, labels)
        self.path_table, self.limit = tf.constant(list(paths)), max_pixels()

    def by_pil(self, index):
        image = tf.numpy_function(self.decoder, [index], tf.uint8, stateful=False)
        return tf.ensure_shape(image, [None, None, 3])

    def by_graph(self, index, header_to_pil=False):
        """The graph's decode of file `index`; what its header rules out goes to PIL with
        `header_to_pil`, or fails."""
        data = tf.io.read_file(self.path_table[index])
        return decode_tf(data, self.limit,
                         otherwise=(lambda: self.by_pil(index)) if header_to_pil else None)

    def image_by_image(self, plan):
        """(image, index, *rest) per plan entry, each in its own small dataset, so that
        wherever the graph fails (another format or mode, a missing or damaged file) PIL takes
        over, with its replacement of unreadable images."""
        def in_graph(index, *rest):
            return (self.by_graph(index), index, *rest)

        def with_pil(index, *rest):
            return (self.by_pil(index), index, *rest)

        def one(*entry):  # the graph's errors end its dataset empty: PIL takes over
            entry = tf.data.Dataset.from_tensors(entry)
            return entry.map(in_graph).ignore_errors().concatenate(entry.map(with_pil)).take(1)

        return plan.interleave(one, block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=True)


def letterboxed_batches(plan, paths, labels, batch_size, size):
    """(uint8 images letterboxed to `size`, indices, flips), `batch_size` plan entries at a
    time. Each image is read, decoded, cropped and letterboxed as TensorFlow ops in a plain
    parallel map, or decoded by PIL where its header says the graph would not give PIL's pixels
    (other formats and modes, EXIF). An error on the way (a file gone, damaged data) drops the
    graph's attempt at that batch, which is made again image by image."""
    images = TrainingImages(paths, labels)

    def letterboxed(image, index, flip, box):
        return letterbox_tf(crop_fraction_tf(image, box), size), index, flip

    def in_graph(index, flip, box):
        return letterboxed(images.by_graph(index, header_to_pil=True), index, flip, box)

    def one_batch(*entries):
        entries = tf.data.Dataset.from_tensor_slices(entries)
        fast = entries.map(in_graph, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        careful = images.image_by_image(entries).map(letterboxed)
        return (fast.ignore_errors().batch(batch_size, drop_remainder=True)
                .concatenate(careful.batch(batch_size)).take(1))

    def shaped(images, indices, flips):  # the interleave's result has shapes unknown
        return (tf.ensure_shape(images, [batch_size, *size, 3]),
                tf.ensure_shape(indices, [batch_size]), tf.ensure_shape(flips, [batch_size]))

    return plan.batch(batch_size, drop_remainder=True).interleave(
        one_batch, cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True).map(shaped)


def triplet_dataset(paths, labels, num_classes, input_shape, batch_size, steps, epochs,
                    first_epoch=0, seed=0, augment=True, preprocessing="scale01",
                    anchor_indices=None, crop=None, replicas=1, crop_jitter=0.0):
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
    plan = triplet_plan(sampler, steps, batch_size, epochs, first_epoch, augment, crop,
                        crop_jitter, replicas)
    size = int(input_shape[0]), int(input_shape[1])
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))

    def finish(images, indices, flips):  # whole batches: one op each instead of one per image
        images = tf.where(flips[:, None, None, None], tf.reverse(images, [2]), images)
        y = tf.one_hot(tf.gather(label_table, indices), num_classes)
        return preprocess_tf(images, preprocessing), (y, y)

    ds = letterboxed_batches(plan, paths, labels, batch_size, size)
    return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def split_lines(entries, val_split=0.01, seed=10101):
    """Shuffle with the original's seed and hold out `val_split` of the lines for validation."""
    order = np.random.RandomState(seed).permutation(len(entries))
    entries = [entries[i] for i in order]
    num_val = max(1, int(len(entries) * val_split)) if val_split > 0 else 0
    return entries[num_val:], entries[:num_val]


def load_lines(annotation_path, skip_missing=False):
    """The annotation's lines, checked before any model is built."""
    import collections

    from utils.annotation import read_annotation

    entries = read_annotation(annotation_path)
    missing = [p for _, p in entries if not os.path.exists(p)]
    if missing and not skip_missing:
        raise AnnotationError(f"{len(missing)} images of {annotation_path} do not exist, e.g. "
                              f"{missing[:3]}; run txt_annotation.py again, or pass "
                              f"--skip-missing to train without them")
    if missing:
        logger.warning(f"skipping {len(missing)} images that no longer exist, e.g. "
                       f"{missing[0]}")
        gone = set(missing)
        entries = [(c, p) for c, p in entries if p not in gone]
    counts = collections.Counter(label for label, _ in entries)
    if len(counts) < 2 or max(counts.values(), default=0) < 2:
        raise AnnotationError(f"{annotation_path} has {len(counts)} classes with images and "
                              f"{sum(n >= 2 for n in counts.values())} with 2 or more: training "
                              f"needs at least 2 classes and one with 2 images")
    return entries


def validation_plan(held_out, batch_size):
    """(validation steps, what picks best_epoch_weights, a note for the log or None).

    Validation needs one full batch of held-out images: on fewer (one image, on a small
    dataset) its loss, and so the choice of the best epoch, is chance."""
    if held_out >= batch_size:
        return held_out // batch_size, "val_loss", None
    why = (f"{held_out} held-out images are fewer than one batch of {batch_size}" if held_out
           else "--val-split is 0")
    return 0, "loss", (f"no validation ({why}): best_epoch_weights is the epoch of the lowest "
                       f"training loss; raise --val-split or lower --batch-size to validate")
