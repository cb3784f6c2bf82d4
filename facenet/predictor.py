"""The `Facenet` predictor: embed faces, compare two, decide same or different.

Settings come from `_defaults`, overridden by keyword arguments, then filled from the model's
card (backbone, input shape, preprocessing, threshold) where the caller left them as None.
The default model is the pretrained Inception-ResNet-V1, fetched on first use.
"""
import dataclasses
import os
import warnings

import numpy as np

from facenet import weights as registry
from facenet.batching import iter_batches
from utils.errors import WeightFileError
from utils.fileio import sha256_of
from utils.image import get_preprocessing, parse_crop, prepare_image

FALLBACK_THRESHOLD = 1.10  # used only for a model without a card; say so when it happens


@dataclasses.dataclass(frozen=True)
class Verification:
    distance: float
    threshold: float

    @property
    def same(self):
        return self.distance < self.threshold

    @property
    def verdict(self):
        return "same" if self.same else "different"


class Facenet:
    _defaults = {
        "model_path": None,  # None: the registry's default pretrained model, fetched once
        "input_shape": None,  # None: the card's, else [160, 160, 3]
        "backbone": None,  # None: the card's, else "mobilenet"
        "letterbox_image": True,
        "preprocessing": None,  # None: the card's, else "scale01" (the original's x/255)
        "threshold": None,  # None: the card's calibrated LFW threshold
        "crop": None,  # None / "lfw" / (x0, y0, x1, y1) fractions taken before resizing
        "batch_size": 32,
        "workers": 2,  # image-decoding threads
    }

    @classmethod
    def get_defaults(cls, name):
        if name not in cls._defaults:
            raise AttributeError(f"unrecognized attribute name {name!r}")
        return cls._defaults[name]

    def __init__(self, log=print, **kwargs):
        unknown = set(kwargs) - set(self._defaults)
        if unknown:
            raise TypeError(f"unknown Facenet settings {sorted(unknown)}; "
                            f"known: {sorted(self._defaults)}")
        self.__dict__.update(self._defaults)
        self.__dict__.update(kwargs)
        self.log = log
        if self.model_path is None:
            if not registry.is_fetched(registry.DEFAULT_MODEL):
                log("The default pretrained model is not here yet: fetching it (once).")
            self.model_path = registry.fetch(registry.DEFAULT_MODEL, log=log)
        self.card = self._check_card(registry.read_card(self.model_path))
        card = self.card or {}
        self.backbone = self.backbone or card.get("backbone", "mobilenet")
        self.input_shape = tuple(self.input_shape or card.get("input_shape", (160, 160, 3)))
        self.preprocessing = self.preprocessing or card.get("preprocessing", "scale01")
        self._preprocess = get_preprocessing(self.preprocessing)
        if self.threshold is None:
            self.threshold = card.get("threshold")
            if self.threshold is None:
                warnings.warn(f"{self.model_path} has no model card with a calibrated threshold; "
                              f"using {FALLBACK_THRESHOLD}. Run eval_lfw.py --update-card to "
                              f"calibrate one.", stacklevel=2)
                self.threshold = FALLBACK_THRESHOLD
        self.threshold = float(self.threshold)
        self._crop = parse_crop(self.crop)
        self.generate()

    def _check_card(self, card):
        if card is None:
            return None
        if self.backbone and card.get("backbone") and card["backbone"] != self.backbone:
            raise WeightFileError(
                f"{self.model_path}: its card says backbone {card['backbone']!r} but "
                f"{self.backbone!r} was asked for; leave backbone unset or fix the card")
        expected = card.get("weights_sha256")
        if expected and sha256_of(self.model_path) != expected:
            raise WeightFileError(
                f"{self.model_path} does not match its model card "
                f"{registry.card_path_for(self.model_path)} (checksum differs): the weights were "
                f"replaced or damaged. Fetch them again or delete the stale card.")
        return card

    def generate(self):
        """Build the network and load the weights (strictly, by layer name)."""
        from nets.facenet import facenet
        from nets.weights_io import load_weights

        self.model = facenet(self.input_shape, backbone=self.backbone, mode="predict")
        self.load_report = load_weights(self.model, self.model_path)
        self.log(f"{os.path.basename(self.model_path)}: {len(self.load_report.filled)} weighted "
                 f"layers loaded ({self.backbone}, {self.preprocessing}, threshold "
                 f"{self.threshold:.3f}).")
        self._build_forward()

    @classmethod
    def from_keras(cls, model, preprocessing="scale01", crop=None, threshold=FALLBACK_THRESHOLD,
                   batch_size=32, letterbox_image=True):
        """A predictor over an in-memory embedding model (e.g. during training)."""
        self = cls.__new__(cls)
        self.__dict__.update(cls._defaults)
        self.__dict__.update(preprocessing=preprocessing, crop=crop, threshold=float(threshold),
                             batch_size=batch_size, letterbox_image=letterbox_image)
        self.log, self.card, self.model = (lambda *a: None), None, model
        self.input_shape = tuple(int(s) for s in model.input.shape[1:])
        self._preprocess = get_preprocessing(preprocessing)
        self._crop = parse_crop(crop)
        self._build_forward()
        return self

    def _build_forward(self):
        import tensorflow as tf

        h, w, c = self.input_shape
        self._forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, h, w, c], tf.float32)])

    # -- embedding ---------------------------------------------------------------------------
    def prepare(self, image):
        """One image (path, PIL image or array) -> a uint8 array at the input size."""
        return prepare_image(image, self.input_shape, self.letterbox_image, self._crop)

    def embed_arrays(self, batch, flip=False):
        """Embed a uint8 (N, H, W, 3) batch of prepared images: (N, 128) unit vectors."""
        x = self._preprocess(batch)
        emb = self._forward(x).numpy()
        if flip:
            emb = emb + self._forward(np.ascontiguousarray(x[:, :, ::-1])).numpy()
            emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    def iter_embeddings(self, images, batch_size=None, flip=False):
        """Yield (N_i, 128) arrays for consecutive batches of `images`, decoding in threads."""
        for batch in iter_batches(images, self.prepare, batch_size or self.batch_size,
                                  self.workers):
            yield self.embed_arrays(np.stack(batch), flip=flip)

    def embed(self, images, batch_size=None, flip=False):
        """Embeddings of a list of images (paths, PIL images or arrays): an (N, 128) array."""
        if isinstance(images, (str, os.PathLike)) or not hasattr(images, "__iter__") or (
                isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        parts = list(self.iter_embeddings(images, batch_size, flip))
        if not parts:
            return np.zeros((0, self.model.output.shape[-1]), np.float32)
        return np.concatenate(parts)

    # -- comparing ---------------------------------------------------------------------------
    def compare(self, image_1, image_2, threshold=None, out=None, show=False):
        """Verification of two face images, optionally drawn side by side (each decoded once)."""
        faces = [self.prepare(image_1), self.prepare(image_2)]
        e = self.embed_arrays(np.stack(faces))
        threshold = self.threshold if threshold is None else float(threshold)
        result = Verification(float(np.linalg.norm(e[0] - e[1])), threshold)
        if out or show:
            from utils.plots import draw_pair

            draw_pair(faces[0], faces[1], result, out=out, show=show)
        return result

    def distance(self, image_1, image_2):
        return self.compare(image_1, image_2).distance

    def verify(self, image_1, image_2, threshold=None):
        """Distance, threshold and the same/different decision for two face images."""
        return self.compare(image_1, image_2, threshold)

    def detect_image(self, image_1, image_2, out=None, show=False):
        """The original's call: the L2 distance of two faces, drawn side by side with it."""
        return self.compare(image_1, image_2, out=out, show=show).distance
