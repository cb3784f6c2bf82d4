"""Find faces in photos and align them the way the model expects.

MTCNN (the `mtcnn` package's networks and weights, run on ONNX Runtime by
facenet/mtcnn_onnx.py or in the package on TensorFlow) gives each face a box, a confidence and five
landmarks (the two eyes, the nose, the two mouth corners, in image order: left to right).
A face is aligned by the similarity transform (rotation, uniform scale, shift; Umeyama's
least squares) that carries its five landmarks onto a canonical template, then warped at the
model's input size. The template is where the landmarks sit, on average, in the crops the
pretrained FaceNet was trained on (MTCNN box + margin); `margin` widens or tightens the view.

`method="box"` is the older recipe (no rotation: the detector's box grown by a margin, cut out
and resized), kept for comparison and for crops made that way.
"""
import dataclasses
import functools
import logging

import numpy as np
from PIL import Image

from utils.choices import ENGINES
from utils.errors import FacenetError, SettingError
from utils.image import load_image

logger = logging.getLogger(__name__)

# Five landmarks (left eye, right eye, nose, left mouth corner, right mouth corner, as seen in
# the image) as fractions of the aligned crop at margin 0. Measured on the 7,692 LFW pair images
# with a face: the Procrustes mean of their landmarks (the face shape a similarity transform can
# reach), placed where the crops the pretrained model was trained on put it (MTCNN box + 32 px
# at 160, FaceNet's own data preparation), made left-right symmetric.
# `python -m benchmarks.align_template --symmetric --procrustes` measures it again.
TEMPLATE = np.array([
    [0.3452, 0.3835],
    [0.6548, 0.3835],
    [0.5000, 0.5652],
    [0.3621, 0.7221],
    [0.6379, 0.7221],
], dtype=np.float64)
DEFAULT_MARGIN = 0.0  # extra border, as a fraction of the crop side, on top of the template's
METHODS = ("similarity", "box")
BOX_MARGIN_PX = 32  # method="box": pixels added around the box at a 160-pixel output
# MTCNN looks at a copy of each photo at most this many pixels long: its memory and time grow
# with the pixels (comparing an 8000x8000 photo took 9.6 GB and 56 s; MTCNN at 1600 px peaks at
# 1.0 GB with TensorFlow, in 2.6 s on 2 cores). A face must be min_face_size pixels wide in the
# copy; alignment reads the original's pixels.
DETECT_MAX_SIDE = 1600


class NoFaceError(FacenetError):
    """No face was found in an image."""


@dataclasses.dataclass(frozen=True)
class Face:
    """One detection in source-image pixels: box (x0, y0, x1, y1), confidence, 5 landmarks."""
    box: tuple
    confidence: float
    landmarks: np.ndarray  # (5, 2) x, y

    @property
    def area(self):
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    def to_dict(self):
        return {"box": [round(float(v), 2) for v in self.box],
                "confidence": round(float(self.confidence), 5),
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]}

    @classmethod
    def from_dict(cls, d):
        return cls(tuple(float(v) for v in d["box"]), float(d["confidence"]),
                   np.asarray(d["landmarks"], dtype=np.float64).reshape(5, 2))


@dataclasses.dataclass
class AlignedFace:
    """An aligned crop (uint8 H x W x 3), the detection it came from, and the 2x3 matrix that
    maps source pixels to crop pixels (so landmarks can be checked in the crop)."""
    image: np.ndarray
    face: Face
    matrix: np.ndarray

    @property
    def landmarks(self):
        """The face's landmarks in crop pixels."""
        return transform_points(self.matrix, self.face.landmarks)


def template_points(size, margin=DEFAULT_MARGIN):
    """The template in pixels of a (width, height) crop, shrunk towards the centre by `margin`
    (a fraction of the side added as border on each side; negative zooms in)."""
    w, h = size
    scale = 1.0 - 2.0 * margin
    if scale <= 0:
        raise SettingError(f"margin must be below 0.5, got {margin}")
    pts = 0.5 + (TEMPLATE - 0.5) * scale
    return pts * np.array([w, h], dtype=np.float64)


def similarity_transform(src, dst):
    """The 2x3 similarity matrix (rotation, uniform scale, translation) mapping the points
    `src` onto `dst` with least squared error (Umeyama 1991, without reflection)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s ** 2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("landmarks are all at one point; cannot align")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def transform_points(matrix, points):
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp(image, matrix, size):
    """Warp a PIL image by the 2x3 source->crop `matrix` into a crop of (width, height); area
    outside the photo is grey. A photo shrunk by more than 2x is first reduced by an integer
    factor (box filter), as bilinear sampling alone would alias."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    factor = int(1.0 / max(np.sqrt(abs(np.linalg.det(matrix[:, :2]))), 1e-9)) // 2 * 2
    if factor > 1:
        small = image.reduce(factor)
        # a pixel of the reduced photo covers (sx, sy) source pixels
        full = full @ np.diag([image.width / small.width, image.height / small.height, 1.0])
        image = small
    inv = np.linalg.inv(full)[:2].ravel()  # PIL wants crop -> source
    return np.asarray(image.transform(tuple(size), Image.AFFINE, tuple(inv),
                                      resample=Image.BILINEAR, fillcolor=(128, 128, 128)),
                      dtype=np.uint8)


def box_matrix(face, size, margin_px=BOX_MARGIN_PX):
    """method="box": the matrix that cuts the box grown by `margin_px` (at a 160 output; scaled
    with the output) and stretches it onto the crop, no rotation."""
    w, h = size
    m = margin_px * w / 160.0
    x0, y0, x1, y1 = face.box
    bw, bh = x1 - x0, y1 - y0
    # margin in output pixels -> source pixels: out = (src - x0 + p) * w / (bw + 2p), p = m/2 * ...
    px = (m / 2) * bw / (w - m) if w > m else 0.0
    py = (m / 2) * bh / (h - m) if h > m else 0.0
    sx, sy = w / (bw + 2 * px), h / (bh + 2 * py)
    return np.array([[sx, 0.0, -(x0 - px) * sx], [0.0, sy, -(y0 - py) * sy]])


def align_face(image, face, size=(160, 160), margin=DEFAULT_MARGIN, method="similarity"):
    """Warp one detected face of a PIL RGB image into an AlignedFace of (width, height)."""
    if method == "similarity":
        matrix = similarity_transform(face.landmarks, template_points(size, margin))
    elif method == "box":
        matrix = box_matrix(face, size)
    else:
        raise SettingError(f"unknown alignment method {method!r}; choose one of {METHODS}")
    return AlignedFace(warp(image, matrix, size), face, matrix)


def detection_copy(image, max_side=DETECT_MAX_SIDE):
    """`image` shrunk so that its long side is at most `max_side` (None: as it is), and the
    (x, y) factors that carry the copy's coordinates back to the image's."""
    w, h = image.size
    if not max_side or max(w, h) <= max_side:
        return image, (1.0, 1.0)
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.BILINEAR, reducing_gap=3.0), (w / size[0], h / size[1])


def _scale_rows(rows, factors):
    """mtcnn rows (see _faces_from_rows) with x's and y's multiplied by `factors`."""
    rows = np.array(rows, dtype=np.float64)
    rows[:, [1, 3, 6, 7, 8, 9, 10]] *= factors[0]
    rows[:, [2, 4, 11, 12, 13, 14, 15]] *= factors[1]
    return rows


def _faces_from_rows(rows):
    faces = []
    for r in rows:
        # mtcnn's numpy rows: id, x0, y0, x1, y1, confidence, five x's, then five y's
        faces.append(Face(tuple(float(v) for v in r[1:5]), float(r[5]),
                          np.asarray(r[6:16], dtype=np.float64).reshape(2, 5).T.copy()))
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


class FaceDetector:
    """MTCNN, built on first use. `detect` returns the faces of one image, largest first, in
    the image's pixels (found on a copy at most `max_side` long; None: the full image).

    `engine` runs it: "onnx" on ONNX Runtime (facenet/mtcnn_onnx.py: the same networks and
    steps, no TensorFlow), "keras" in the `mtcnn` package (TensorFlow), "auto" on ONNX Runtime
    where it is installed. A predictor sets it to its own engine."""

    def __init__(self, min_face_size=20, min_confidence=0.9, batch_size=16,
                 max_side=DETECT_MAX_SIDE, engine="auto", threads=None):
        self.min_face_size = int(min_face_size)
        self.min_confidence = float(min_confidence)
        self.batch_size = int(batch_size)
        self.max_side = max_side
        self.engine = engine
        self.threads = threads
        self._mtcnn = None

    def settings(self):
        # The same for both engines: they find the same faces, boxes and landmarks to well
        # under a pixel (tests/test_mtcnn_onnx.py), so aligned crops cached by one serve the
        # other (docs/design.md).
        return {"detector": "mtcnn-1.0", "min_face_size": self.min_face_size,
                "min_confidence": self.min_confidence}

    def engine_used(self):
        """The engine that runs (or will run) detection: "onnx" or "keras"."""
        if self.engine not in ENGINES:
            raise SettingError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.engine == "keras":
            return "keras"
        from facenet.engine import INSTALL, onnxruntime_available

        if onnxruntime_available():
            return "onnx"
        if self.engine == "onnx":
            raise SettingError(f"engine 'onnx' needs onnxruntime and onnx: {INSTALL}")
        _say_detection_fallback()
        return "keras"

    @property
    def mtcnn(self):
        """The detector: facenet.mtcnn_onnx.OnnxMTCNN, or the package's MTCNN."""
        if self._mtcnn is None:
            if self.engine_used() == "onnx":
                from facenet.mtcnn_onnx import OnnxMTCNN

                self._mtcnn = OnnxMTCNN(self.threads)
                return self._mtcnn
            try:
                from mtcnn import MTCNN
            except ImportError as e:
                raise FacenetError("face detection needs the `mtcnn` package: "
                                   "pip install -r requirements.txt") from e
            self._mtcnn = MTCNN()
        return self._mtcnn

    def detect(self, image):
        return self.detect_many([image])[0]

    def detect_many(self, images):
        """Faces of each PIL RGB image: the same as alone, whatever else is in the list (images
        of one size share an ONNX Runtime batch)."""
        results = [None] * len(images)
        copies = [detection_copy(im, self.max_side) for im in images]
        by_shape = {}
        for i, (im, _) in enumerate(copies):
            by_shape.setdefault(im.size, []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                arrays = [np.asarray(copies[i][0], dtype=np.uint8) for i in chunk]
                rows = self._run(arrays)
                for j, i in enumerate(chunk):
                    mine = rows[rows[:, 0] == j] if len(rows) else rows
                    faces = _faces_from_rows(_scale_rows(mine, copies[i][1]))
                    results[i] = [f for f in faces if f.confidence >= self.min_confidence]
        return results

    def _run(self, arrays):
        """mtcnn rows of a batch of same-sized uint8 arrays (see _faces_from_rows)."""
        if min(min(a.shape[:2]) for a in arrays) < 12:
            return np.empty((0, 16))
        detector = self.mtcnn
        if not hasattr(detector, "detect_faces"):  # OnnxMTCNN: the same rows, one call
            return detector.detect(arrays, self.min_face_size)
        # one photo at a time: the package's batches let a photo's batch-mates choose among
        # its boxes tied at a saturated score (see mtcnn_onnx._by_score)
        parts = []
        for j, array in enumerate(arrays):
            rows = np.asarray(detector.detect_faces(array, box_format="xyxy",
                                                    output_type="numpy",
                                                    min_face_size=self.min_face_size),
                              dtype=np.float64).reshape(-1, 16)
            rows[:, 0] = j
            parts.append(rows)
        return np.concatenate(parts)


@functools.lru_cache(maxsize=None)
def _say_detection_fallback():
    from facenet.engine import INSTALL

    logger.info(f"onnxruntime is not installed: face detection runs in the mtcnn package "
                f"(TensorFlow); to install it: {INSTALL}")


CHOICES = ("largest", "central")


def choose_face(faces, image_size, choice="largest"):
    """The face to use: the largest box, or ("central") the largest after a penalty for
    distance from the image centre (what a cropped dataset such as LFW wants)."""
    if not faces:
        return None
    if choice == "largest":
        return max(faces, key=lambda f: f.area)
    if choice != "central":
        raise SettingError(f"unknown face choice {choice!r}; choose one of {CHOICES}")
    cx, cy = image_size[0] / 2, image_size[1] / 2

    def score(f):
        fx, fy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        return f.area - 2.0 * ((fx - cx) ** 2 + (fy - cy) ** 2)
    return max(faces, key=score)


class FaceAligner:
    """Detect, choose and align faces: `align(source)` gives one face (the largest, or the
    most central with choice="central"), `align_all(source)` every face, largest first
    (an empty list when there is none)."""

    def __init__(self, size=(160, 160), margin=DEFAULT_MARGIN, method="similarity",
                 choice="largest", detector=None):
        if method not in METHODS:
            raise SettingError(f"unknown alignment method {method!r}; choose one of {METHODS}")
        if choice not in CHOICES:
            raise SettingError(f"unknown face choice {choice!r}; choose one of {CHOICES}")
        self.choice = choice
        self.size = tuple(int(v) for v in size)
        self.margin = float(margin)
        self.method = method
        template_points(self.size, self.margin)  # validates the margin
        self.detector = detector or FaceDetector()

    def settings(self):
        return {"size": list(self.size), "margin": self.margin, "method": self.method,
                "choice": self.choice, "template": TEMPLATE.round(4).tolist(),
                **self.detector.settings()}

    def align_detected(self, image, face):
        return align_face(image, face, self.size, self.margin, self.method)

    def align_all(self, source):
        image = load_image(source)
        return [self.align_detected(image, f) for f in self.detector.detect(image)]

    def align(self, source):
        image = load_image(source)
        face = choose_face(self.detector.detect(image), image.size, self.choice)
        if face is None:
            raise self.no_face_error(_describe(source))
        return self.align_detected(image, face)

    def no_face_error(self, where):
        return NoFaceError(f"no face found in {where} (MTCNN, confidence >= "
                           f"{self.detector.min_confidence}); use a photo where the face is "
                           f"visible and at least {self.detector.min_face_size} pixels wide, "
                           f"or turn alignment off (--no-align)")


def _describe(source):
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        return str(source)
    if isinstance(source, Image.Image):
        return f"the {source.width}x{source.height} image"
    return f"the array of shape {getattr(source, 'shape', '?')}"
