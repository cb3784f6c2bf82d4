"""MTCNN on ONNX Runtime: the `mtcnn` package's (1.0) detection pipeline in NumPy around its
three networks written as ONNX graphs (facenet/mtcnn_build.py), so that finding faces loads no
TensorFlow.

A copy of the package's pipeline, not a new detector, so that its faces, boxes and landmarks
are the package's (tests/test_mtcnn_onnx.py measures it on LFW): the same image pyramid
(scales, and TensorFlow's area resizing with its float32 cell edges), thresholds and
regressions, the package's own NMS (a box goes when any higher-scored box overlaps it, kept or
not), squaring, patches (TensorFlow's crop_and_resize: bilinear, zero outside the image), and
clipping of boxes (landmarks are not clipped). Rows are the package's numpy output: image index,
x0, y0, x1, y1, confidence, five x's, five y's.

The graphs are made once from the package's weight files and cached in the user's cache (the
package's folder belongs to pip), keyed by the files' sha256 and the graph version, with a
manifest of their sha256 written last: a damaged file is rebuilt, never trusted.
"""
import hashlib
import importlib.util
import json
import logging
import os

import numpy as np

from facenet.mtcnn_build import GRAPH_VERSION, INPUT, NETS
from utils.errors import FacenetError

logger = logging.getLogger(__name__)

SCALE_FACTOR, MIN_SIZE = 0.709, 12  # the pyramid's step, and PNet's window
THRESHOLDS = {"pnet": 0.6, "rnet": 0.7, "onet": 0.8}  # the package's defaults
NMS_PER_SCALE, NMS_PNET, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
CHUNK_PIXELS = 2_000_000  # photo pixels per pass of the pyramid: bounds memory on big
# batches (the running sums are float64, 48 bytes a pixel)
NMS_BLOCK = 4_000_000  # box pairs compared at once by nms_keep


# -- the cached graphs -------------------------------------------------------------------------
def package_weight_files():
    """{net: path} of the mtcnn package's weight files, found without importing the package
    (its __init__ imports TensorFlow)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise FacenetError("face detection needs the `mtcnn` package (its network weights): "
                           "pip install -r requirements.txt")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "assets", "weights")
    files = {net: os.path.join(folder, f"{net}.lz4") for net in NETS}
    missing = [p for p in files.values() if not os.path.isfile(p)]
    if missing:
        raise FacenetError(f"{missing[0]}: the mtcnn package's weight file is missing; "
                           f"reinstall it: python -m pip install --force-reinstall mtcnn")
    return files


def cache_key(files):
    """What the graphs depend on, hashed: the weight files' bytes and how they are written."""
    from facenet.onnx_build import OPSET
    from utils.fileio import sha256_of

    parts = {"weights": {net: sha256_of(path) for net, path in sorted(files.items())},
             "graph": GRAPH_VERSION, "opset": OPSET}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_folder():
    from facenet.weights import cache_dir

    return os.path.join(cache_dir(), "onnx")


def build_models(files):
    """{net: serialized ONNX model} from the package's weight files (needs joblib and onnx)."""
    import joblib

    from facenet.mtcnn_build import check_weights, mtcnn_to_onnx

    models = {}
    for net, path in files.items():
        try:
            weights = joblib.load(path)
        except Exception as e:
            raise FacenetError(f"{path}: cannot read the mtcnn weights ({str(e)[:200]}); "
                               f"reinstall the package: python -m pip install "
                               f"--force-reinstall mtcnn") from None
        models[net] = mtcnn_to_onnx(net, check_weights(net, weights, path)).SerializeToString()
    return models


class _Damaged(Exception):
    pass


def _manifest_path(folder, key):
    return os.path.join(folder, f"mtcnn.{key}.json")


def read_cached(folder, key):
    """{net: bytes} from the cache; FileNotFoundError when absent, _Damaged(reason) when a file
    is not what the manifest says."""
    manifest = _manifest_path(folder, key)
    with open(manifest, encoding="utf-8") as f:
        try:
            entries = json.load(f)["models"]
        except (ValueError, KeyError, TypeError) as e:
            raise _Damaged(f"{manifest}: unreadable ({e})") from None
    models = {}
    for net in NETS:
        entry = entries.get(net) if isinstance(entries, dict) else None
        if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
            raise _Damaged(f"{manifest}: no entry for {net}")
        path = os.path.join(folder, os.path.basename(str(entry["file"])))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise _Damaged(f"{path}: {e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise _Damaged(f"{path}: its sha256 differs from the manifest's")
        models[net] = data
    return models


def write_cached(folder, key, models):
    """The models, then the manifest that vouches for them, each written atomically."""
    from facenet.engine import save_model
    from utils.fileio import write_json_atomic

    os.makedirs(folder, exist_ok=True)
    entries = {}
    for net, data in models.items():
        name = f"mtcnn_{net}.{key}.onnx"
        save_model(data, os.path.join(folder, name))
        entries[net] = {"file": name, "sha256": hashlib.sha256(data).hexdigest()}
    write_json_atomic(_manifest_path(folder, key), {"graph": GRAPH_VERSION, "models": entries})


def cached_models(folder=None):
    """{net: serialized ONNX model}: from the cache, or made from the weights and cached."""
    files = package_weight_files()
    key = cache_key(files)
    folder = folder or default_cache_folder()
    try:
        return read_cached(folder, key)
    except FileNotFoundError:
        logger.info(f"Making the ONNX Runtime models of MTCNN (once): {folder}")
    except _Damaged as e:
        logger.warning(f"{e}: rebuilding the MTCNN models")
    models = build_models(files)
    try:
        write_cached(folder, key, models)
    except OSError as e:  # a read-only or full disk costs the next start a rebuild, not this one
        logger.warning(f"cannot cache the MTCNN models in {folder}: {e.strerror or e}")
    return models


# -- the pipeline ------------------------------------------------------------------------------
def scale_pyramid(width, height, min_face_size, scale_factor=SCALE_FACTOR, min_size=MIN_SIZE):
    """The package's pyramid: the scales at which PNet looks at an image."""
    count = round(-((np.log(min(width, height) / min_size) / np.log(scale_factor)) + 1))
    return (min_size / min_face_size) * scale_factor ** np.arange(max(count, 0))


def _integral(x, axis):
    """(padded, cumulative) along `axis`: x with its last slice repeated (a cell past the end
    reads the last pixel, as TensorFlow's bound does), and its running sum from 0."""
    x = np.moveaxis(x, axis, 0)
    padded = np.concatenate([x, x[-1:]], axis=0)
    return padded, np.concatenate([np.zeros_like(x[:1]), np.cumsum(padded, axis=0)], axis=0)


def _area_axis(padded, cumulative, out_size, axis):
    """TensorFlow's area resize along one axis, from _integral's arrays: each output cell the
    mean of the input over [i * s, (i + 1) * s), s = in / out, the edges in float32 as
    TensorFlow computes them."""
    n = len(padded) - 1
    scale = np.float32(n) / np.float32(out_size)
    edges = (np.arange(out_size + 1, dtype=np.float32) * scale).astype(np.float64)
    whole = np.minimum(np.floor(edges).astype(np.int64), n)
    frac = (edges - whole).reshape((-1,) + (1,) * (padded.ndim - 1))
    integral = cumulative[whole] + frac * padded[whole]  # the input's integral up to each edge
    return np.moveaxis((integral[1:] - integral[:-1]) / np.float64(scale), 0, axis)


class AreaResizer:
    """tf.image.resize(method="area") of one (N, H, W, C) batch to many sizes: the running sum
    down the columns is made once for the whole pyramid."""

    def __init__(self, images):
        self.rows = _integral(np.asarray(images, dtype=np.float64), 1)

    def __call__(self, height, width):
        """float32 (N, height, width, C)."""
        x = _area_axis(*self.rows, height, 1)
        return _area_axis(*_integral(x, 2), width, 2).astype(np.float32)


def resize_area(images, height, width):
    """(N, H, W, C) -> float32 (N, height, width, C), as tf.image.resize(method="area")."""
    return AreaResizer(images)(height, width)


def crop_and_resize(images, boxes, box_index, size):
    """tf.image.crop_and_resize: (n, size, size, C) float32 patches of `images` (N, H, W, C)
    in the normalised boxes (y0, x0, y1, x1), bilinear; zero outside the image."""
    n = len(boxes)
    height, width = images.shape[1:3]
    boxes = np.asarray(boxes, dtype=np.float32)
    steps = np.arange(size, dtype=np.float32)

    def axis(lo, hi, extent):
        last = np.float32(extent - 1)
        pos = lo[:, None] * last + steps[None] * ((hi - lo) * last / np.float32(size - 1))[:, None]
        inside = (pos >= 0) & (pos <= last)  # outside: zero, whatever the indices below
        low, high = np.floor(pos), np.ceil(pos)
        return (np.clip(low, 0, extent - 1).astype(np.int64),
                np.clip(high, 0, extent - 1).astype(np.int64),
                (pos - low).astype(np.float32), inside)

    top, bottom, ylerp, yin = axis(boxes[:, 0], boxes[:, 2], height)
    left, right, xlerp, xin = axis(boxes[:, 1], boxes[:, 3], width)
    b = np.asarray(box_index, dtype=np.int64)[:, None, None]
    img = np.asarray(images, dtype=np.float32)

    def at(rows, cols):
        return img[b, rows[:, :, None], cols[:, None, :]]

    xl = xlerp[:, None, :, None]
    upper = at(top, left) + (at(top, right) - at(top, left)) * xl
    lower = at(bottom, left) + (at(bottom, right) - at(bottom, left)) * xl
    out = upper + (lower - upper) * ylerp[:, :, None, None]
    out *= (yin[:, :, None] & xin[:, None, :])[..., None]
    return out.reshape(n, size, size, img.shape[-1])


def _by_score(rows, column=5):
    """Rows from the highest score down within each image (column 0), images in order, each
    sorted as the package sorts one image alone (argsort, reversed). Sorting a whole batch at
    once, as the package does, lets other photos decide the order of boxes tied at a
    saturated score, and with it which one NMS keeps: a photo's face moved with its
    batch-mates."""
    if not len(rows) or (rows[:, 0] == rows[0, 0]).all():
        return rows[np.argsort(rows[:, column])[::-1]]
    return np.concatenate([_by_score(rows[rows[:, 0] == image], column)
                           for image in np.unique(rows[:, 0])])


def pnet_rows(offsets, scores, threshold, stride=2, cell=12):
    """PNet's windows scoring above `threshold`, regressed: rows (image, x0, y0, x1, y1,
    score) at the scale PNet saw, highest score first."""
    score = scores[..., 1]
    b, y, x = np.where(score > threshold)
    reg = offsets[b, y, x].astype(np.float64)
    x0, y0, x1, y1 = x * stride + 1, y * stride + 1, x * stride + cell, y * stride + cell
    size = cell - 1  # the package's window: pixels 1 to 12 of each 2-pixel step
    rows = np.stack([b, x0 + reg[:, 0] * size, y0 + reg[:, 1] * size,
                     x1 + reg[:, 2] * size, y1 + reg[:, 3] * size,
                     score[b, y, x].astype(np.float64)], axis=1)
    return _by_score(rows)


def nms_keep(boxes, threshold, method="union"):
    """Indices of the (sorted) boxes the package's NMS keeps: a box goes when any box before it
    overlaps it by more than `threshold` (intersection over union, or over the smaller box),
    whether that box was kept or not. In blocks, so memory stays small for many boxes."""
    n = len(boxes)
    x0, y0, x1, y1 = (boxes[:, k] for k in range(4))
    area = (x1 - x0) * (y1 - y0)
    gone = np.zeros(n, dtype=bool)
    block = max(1, NMS_BLOCK // max(n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, n, block):
            stop = min(n, start + block)
            j = slice(start, stop)
            w = np.maximum(0, np.minimum(x1[:stop, None], x1[None, j])
                           - np.maximum(x0[:stop, None], x0[None, j]))
            h = np.maximum(0, np.minimum(y1[:stop, None], y1[None, j])
                           - np.maximum(y0[:stop, None], y0[None, j]))
            inter = w * h
            if method == "union":
                ratio = inter / (area[:stop, None] + area[None, j] - inter)
            else:
                ratio = inter / np.minimum(area[:stop, None], area[None, j])
            before = np.arange(stop)[:, None] < np.arange(start, stop)[None, :]
            gone[start:stop] = ((ratio > threshold) & before).any(axis=0)
    return np.flatnonzero(~gone)


def nms(rows, threshold, method="union", sort=True):
    """The package's NMS per image (column 0), images in order."""
    if sort:
        rows = _by_score(rows)
    kept = []
    for image in np.unique(rows[:, 0]):
        mine = rows[rows[:, 0] == image]
        kept.append(mine[nms_keep(mine[:, 1:5], threshold, method)])
    return np.concatenate(kept) if kept else rows[:0]


def to_square(rows):
    """Boxes grown to squares of their longer side about their centres."""
    rows = rows.copy()
    w, h = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
    side = np.maximum(w, h)
    rows[:, 1] += w * 0.5 - side * 0.5
    rows[:, 2] += h * 0.5 - side * 0.5
    rows[:, 3] = rows[:, 1] + side
    rows[:, 4] = rows[:, 2] + side
    return rows


def regress(rows, offsets):
    """Boxes moved by the network's offsets, in units of the box's (inclusive) size."""
    rows = rows.copy()
    w = rows[:, 3] - rows[:, 1] + 1
    h = rows[:, 4] - rows[:, 2] + 1
    rows[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return rows


class OnnxMTCNN:
    """The three networks on ONNX Runtime; `detect(images, min_face_size)` -> rows."""

    def __init__(self, threads=None, cache_folder=None):
        from facenet.engine import make_session

        models = cached_models(cache_folder)
        self.sessions = {net: make_session(models[net], threads) for net in NETS}

    def _run(self, net, x):
        return self.sessions[net].run(None, {INPUT: np.ascontiguousarray(x, np.float32)})

    def detect(self, images, min_face_size=20):
        """Faces in a list of uint8 (H, W, 3) images of one size: (n, 16) float64 rows."""
        images = [np.asarray(im) for im in images]
        if len({im.shape for im in images}) != 1 or images[0].ndim != 3:
            raise ValueError("detect takes a non-empty list of (H, W, 3) images of one size")
        # the package's scaling; float32 holds (x - 127.5) / 128 exactly, in half the memory
        batch = (np.stack(images).astype(np.float32) - np.float32(127.5)) / np.float32(128)
        height, width = batch.shape[1:3]
        rows = self._proposals(batch, min_face_size)
        if len(rows):
            rows = self._refine(batch, rows)
        if len(rows):
            rows = self._output(batch, rows)
        if not len(rows):
            return np.empty((0, 16))
        # boxes kept inside the image (landmarks are not), as the package's fit_to_image
        rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, width - 1)
        rows[:, [2, 4]] = np.clip(rows[:, [2, 4]], 0, height - 1)
        return rows

    def _proposals(self, batch, min_face_size):
        """PNet over the pyramid; NMS per scale, then across scales; squared."""
        n, height, width = batch.shape[:3]
        sizes = []
        for scale in scale_pyramid(width, height, min_face_size):
            h, w = (np.array([height, width], dtype=np.float64) * scale).astype(np.int64)
            if min(h, w) >= MIN_SIZE:  # else no 12-pixel window fits: nothing to find
                sizes.append((scale, int(h), int(w)))
        if not sizes:
            return np.empty((0, 6))
        found = [[] for _ in sizes]
        step = max(1, CHUNK_PIXELS // (height * width))
        for start in range(0, n, step):
            resize = AreaResizer(batch[start:start + step])
            for k, (scale, h, w) in enumerate(sizes):
                offsets, scores = self._run("pnet", resize(h, w))
                rows = pnet_rows(offsets, scores, THRESHOLDS["pnet"])
                rows[:, 0] += start
                found[k].append(rows)
        per_scale = []
        for (scale, _, _), parts in zip(sizes, found):
            rows = _by_score(np.concatenate(parts)) if len(parts) > 1 else parts[0]
            rows[:, 1:5] /= scale
            per_scale.append(nms(rows, NMS_PER_SCALE, sort=False))
        rows = np.concatenate(per_scale)
        return to_square(nms(rows, NMS_PNET)) if len(rows) else rows

    def _patches(self, batch, rows, size):
        height, width = batch.shape[1:3]
        boxes = rows[:, [2, 1, 4, 3]] / np.array([height, width, height, width])
        return crop_and_resize(batch, boxes, rows[:, 0].astype(np.int64), size)

    def _refine(self, batch, rows):
        """RNet on 24-pixel patches: new scores, regressed boxes, NMS, squared."""
        offsets, scores = self._run("rnet", self._patches(batch, rows, 24))
        rows = rows.copy()
        rows[:, 5] = scores[:, 1]
        rows = regress(rows, offsets)
        rows = rows[rows[:, 5] > THRESHOLDS["rnet"]]
        return to_square(nms(rows, NMS_RNET)) if len(rows) else rows

    def _output(self, batch, rows):
        """ONet on 48-pixel patches: scores, regressed boxes and landmarks; NMS by the smaller
        box."""
        offsets, marks, scores = self._run("onet", self._patches(batch, rows, 48))
        w = rows[:, 3:4] - rows[:, 1:2] + 1
        h = rows[:, 4:5] - rows[:, 2:3] + 1
        marks = np.concatenate([w * marks[:, :5] + rows[:, 1:2] - 1,
                                h * marks[:, 5:] + rows[:, 2:3] - 1], axis=1)
        rows = rows.copy()
        rows[:, 5] = scores[:, 1]
        rows = np.concatenate([regress(rows, offsets), marks], axis=1)
        rows = rows[rows[:, 5] > THRESHOLDS["onet"]]
        return nms(rows, NMS_ONET, method="min") if len(rows) else rows
