"""The `Facenet` predictor: embed faces, compare two, decide same or different.

Settings come from `_defaults`, overridden by keyword arguments, then filled from the model's
card (backbone, input shape, preprocessing, threshold) where the caller left them as None.
The default model is the pretrained Inception-ResNet-V1, fetched on first use.
"""
import dataclasses
import logging
import os

import numpy as np

from facenet import weights as registry
from facenet.align import DEFAULT_MARGIN
from facenet.preparation import FacePreparer, align_mode
from utils.checks import check_threshold
from utils.errors import ImageLoadError, WeightFileError
from utils.fileio import sha256_of
from utils.image import get_preprocessing, parse_crop, prepare_image
from utils.precision import DEFAULT_PRECISION

logger = logging.getLogger(__name__)


def default_workers():
    """Half the cores decode (at least one): TensorFlow computes on all of them."""
    return max(1, (os.cpu_count() or 2) // 2)


FALLBACK_THRESHOLD = 1.10  # used only for a model without a card; say so when it happens


@dataclasses.dataclass(frozen=True)
class Verification:
    distance: float
    threshold: float
    faces: tuple = ()  # the PreparedFace of each image: aligned, fallback or fixed crop
    crops: object = dataclasses.field(default=None, repr=False, compare=False)  # as compared

    @property
    def same(self):
        return self.distance < self.threshold

    @property
    def verdict(self):
        return "same" if self.same else "different"


class Facenet:
    _defaults = {
        "model_path": None,  # None: the registry's pretrained model of `backbone` (unset: the
        # Inception-ResNet-V1, fetched once; MobileNet's ships in model_data/)
        "input_shape": None,  # None: the card's, else [160, 160, 3]
        "backbone": None,  # None: the card's, else "mobilenet"
        "letterbox_image": True,
        "preprocessing": None,  # None: the card's, else "scale01" (the original's x/255)
        "threshold": None,  # None: the card's calibrated LFW threshold
        "crop": None,  # None / "lfw" / (x0, y0, x1, y1) fractions taken before resizing
        # "auto": find the face (MTCNN) and align it, or use the whole image (or `crop`) where
        # none is found; "required" (or True): no face is an error; "off" (or False): no search.
        "align": "auto",
        "align_margin": None,  # None: the card's, else facenet.align.DEFAULT_MARGIN
        "align_method": "similarity",  # or "box" (the detector's box plus a margin, no rotation)
        "align_choice": "largest",  # which face of several: "largest" or "central"
        "align_cache": None,  # a folder (or True: the default) to keep aligned crops of files
        # What runs the network: "keras", "onnx" (ONNX Runtime, a model made once from the
        # weights and cached beside them) or "auto": the fastest that keeps the accuracy on this
        # machine (facenet/engine.py).
        "engine": "auto",
        # "float32", "bfloat16" (Keras), "int8" (ONNX Runtime) or "auto": chosen with the
        # engine (facenet/engine.py; utils/precision.py for Keras)
        "precision": DEFAULT_PRECISION,
        "batch_size": 32,
        # Fold each BatchNorm into the convolution before it for inference: the same
        # embeddings, fewer passes over memory (nets/batchnorm_folding.py); a one-off cost when the
        # model is built. Figures: docs/speed.md.
        "fold_batchnorm": True,
        # Image-decoding threads, decoding the next batches while one is embedded. None: half
        # the cores, leaving the rest to TensorFlow's forward pass (docs/speed.md).
        "workers": None,
    }

    @classmethod
    def get_defaults(cls, name):
        if name not in cls._defaults:
            raise AttributeError(f"unrecognized attribute name {name!r}")
        return cls._defaults[name]

    def __init__(self, model_path=None, **kwargs):
        """Facenet("m.weights.h5", threshold=1.1): the weight file may come first; every
        other setting is a keyword."""
        unknown = set(kwargs) - set(self._defaults)
        if unknown:
            raise TypeError(f"unknown Facenet settings {sorted(unknown)}; "
                            f"known: {sorted(self._defaults)}")
        self.__dict__.update(self._defaults)
        self.__dict__.update(kwargs, model_path=model_path)
        self.workers = self.workers or default_workers()
        if self.model_path is None:  # the registry's pretrained model of this backbone
            name = registry.default_model(self.backbone)
            if not registry.is_fetched(name):
                logger.info("The default pretrained model is not here yet: fetching it (once).")
            self.model_path = registry.fetch(name)
        if not os.path.isfile(self.model_path):  # before a word about its card
            card = registry.card_path_for(self.model_path)
            raise WeightFileError(f"weight file not found: {self.model_path}" + (
                f" (its card {card} is there)" if os.path.exists(card) else ""))
        self.card = self._check_card(registry.read_card(self.model_path))
        logger.debug(f"{self.model_path}: model card "
                     f"{registry.card_path_for(self.model_path) if self.card else 'none'}")
        card = self.card or {}
        assumed = ([] if self.input_shape else ["the original's input 160x160"]) + (
            [] if self.preprocessing else ["preprocessing scale01"])
        if self.card is None and assumed:
            # a card left behind when the weights were copied: the defaults may be wrong for
            # them (a 112 px student read at 160 px scores near chance), so say so
            logger.warning(f"{self.model_path} has no model card beside it "
                           f"({registry.card_path_for(self.model_path)}): reading it with "
                           f"{' and '.join(assumed)}; if the weights came with a .json card, "
                           f"put it beside them")
        self.backbone = self.backbone or card.get("backbone", "mobilenet")
        self.input_shape = tuple(self.input_shape or card.get("input_shape", (160, 160, 3)))
        self.preprocessing = self.preprocessing or card.get("preprocessing", "scale01")
        get_preprocessing(self.preprocessing)  # an unknown name fails here, not at first use
        self.align = align_mode(self.align)
        aligned_card = card.get("aligned") or {}
        if self.align_margin is None:
            self.align_margin = aligned_card.get("margin", DEFAULT_MARGIN)
        if self.threshold is not None:
            self.threshold = check_threshold(self.threshold)
        self._crop = parse_crop(self.crop)
        self._make_preparer()
        self.generate()

    def card_section(self):
        """The part of the model card that describes this predictor's crops: the `aligned`
        section with alignment on, else the top level (fixed crops)."""
        card = self.card or {}
        return (card.get("aligned") or {}) if self.align != "off" else card

    def card_threshold(self):
        """The card's threshold for these crops and this engine: the one measured with this
        "engine precision" (int8 moves distances a little), else the crops' section's, else
        the top level's, else FALLBACK_THRESHOLD with a warning."""
        card = self.card or {}
        figures = (card.get("engines") or {}).get(f"{self.engine} {self.precision}") or {}
        threshold = (figures.get("threshold") if self.align != "off"
                     else (figures.get("lfw_centre_crop") or {}).get("threshold_mean"))
        if threshold is None:  # the aligned section's with alignment on, then the top's
            threshold = self.card_section().get("threshold", card.get("threshold"))
        if threshold is None:
            logger.warning(f"{self.model_path} has no model card with a calibrated "
                           f"threshold; using {FALLBACK_THRESHOLD}. Run eval_lfw.py "
                           f"--update-card to calibrate one.")
            threshold = FALLBACK_THRESHOLD
        return check_threshold(threshold)

    def _make_preparer(self):
        from facenet.align import FaceAligner, FaceDetector

        h, w = self.input_shape[:2]
        # Built even with alignment off, for faces() / compare_all(); MTCNN loads on first use,
        # on the engine generate() resolves (the one asked for until then).
        aligner = FaceAligner((w, h), self.align_margin, self.align_method, self.align_choice,
                              FaceDetector(engine=self.engine))
        cache = None
        if self.align != "off":
            if self.align_cache:
                from facenet.align_cache import AlignCache

                root = None if self.align_cache is True else self.align_cache
                cache = AlignCache(aligner.settings(), root)
        self.aligner = aligner
        self.preparer = FacePreparer(self.prepare, aligner, self.align, cache, self.workers)

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

    # The Keras network, built on first use under the ONNX engine (exports, training tools):
    # a start with the ONNX model cached builds none.
    @property
    def model(self):
        if self.__dict__.get("_model") is None:
            self._build_keras()
        return self._model

    @model.setter
    def model(self, value):
        self._model = value

    @property
    def inference_model(self):
        if self.__dict__.get("_inference_model") is None:
            self._build_keras()
        return self._inference_model

    @inference_model.setter
    def inference_model(self, value):
        self._inference_model = value

    def generate(self):
        """Choose the engine and precision, then load the network: the Keras one (weights
        loaded strictly, by layer name) or the cached ONNX model (made from it once)."""
        from facenet.engine import resolve_engine
        from utils.precision import resolve_precision

        asked, asked_engine = self.precision, self.engine
        self.engine, self.precision = resolve_engine(self.engine, self.precision, self.backbone)
        # MTCNN in float32 is faster on ONNX Runtime on every CPU, at parity (docs/alignment.md):
        # "auto" detects there even where the embedding stays on Keras; "keras" means Keras.
        self.aligner.detector.engine = "keras" if asked_engine == "keras" else "auto"
        if self.engine == "onnx":
            self._model = self._inference_model = None
            self._load_onnx(auto_precision=asked == "auto")
        else:
            self.precision = resolve_precision(self.precision, self.backbone,
                                               self.fold_batchnorm)
            self._build_keras()
            self._build_forward()
            self.embedding_size = int(self.model.output.shape[-1])
        if self.threshold is None:
            self.threshold = self.card_threshold()
        logger.info(f"{os.path.basename(self.model_path)}: {self.backbone}, "
                    f"{self.preprocessing}, {self.engine} {self.precision}, threshold "
                    f"{self.threshold:.3f}.")
        logger.debug(f"input {'x'.join(map(str, self.input_shape))}, align {self.align}, crop "
                     f"{self.crop}, batch {self.batch_size}, {self.workers} decoding "
                     f"thread(s), BatchNorm folded: {bool(self.fold_batchnorm)}")

    def _load_onnx(self, auto_precision=False):
        """The cached ONNX model of these weights and settings, made first if missing."""
        from facenet import engine

        weights_sha = sha256_of(self.model_path)
        table, table_sha = None, None
        if self.precision == "int8":
            name = (self.card or {}).get("name")
            info = registry.MODELS.get(name)
            table_sha = info.int8_table_sha256 if info else None
            if table_sha is None and auto_precision:
                logger.debug(f"{self.model_path}: no int8 calibration table; float32 ONNX")
                self.precision = "float32"
            elif table_sha is None:
                raise WeightFileError(f"{self.model_path}: no int8 calibration table for this "
                                      f"model (only the registry's models have one); use "
                                      f"precision float32 or auto")
            else:
                from facenet.quantize import read_table, table_path

                table = read_table(table_path(name), table_sha, weights_sha)
        key = engine.model_key(weights_sha, self.input_shape, self.preprocessing,
                               self.precision, table_sha)
        path = engine.model_path(self.model_path, key, self.precision)
        if not os.path.exists(path):
            logger.info(f"Making the {self.precision} ONNX Runtime model of "
                        f"{os.path.basename(self.model_path)} (once): {path}")
            # always from the folded network, whatever fold_batchnorm says of Keras runs: the
            # cost is paid once, and ONNX Runtime's quantizer fails on a float convolution
            # followed by a separate BatchNorm (KeyError on its output)
            model = self.inference_model
            if not self.fold_batchnorm:
                from nets.batchnorm_folding import fold_batchnorm

                model = fold_batchnorm(self.model)
            engine.save_model(engine.build_onnx(model, self.preprocessing, self.precision,
                                                table), path)
            engine.prune_cached(path)
        else:
            engine.mark_used(path)
        self.onnx_path = path
        self._runner = engine.OnnxRunner(path)
        self._run = self._runner
        self.embedding_size = self._runner.embedding_size

    def _build_keras(self):
        """Build the Keras network and load the weights (strictly, by layer name); under the
        ONNX engine, in float32."""
        from nets.facenet import facenet
        from nets.weights_io import load_weights
        from utils.precision import dtype_policy

        precision = self.precision if self.engine == "keras" else "float32"
        with dtype_policy(precision):
            self.model = facenet(self.input_shape, backbone=self.backbone, mode="predict")
        self.load_report = load_weights(self.model, self.model_path)
        # `model` is the network as built (its layer names are the weight format);
        # `inference_model` is what the forward pass and the exports run.
        self.inference_model = self.model
        if self.fold_batchnorm:
            from nets.batchnorm_folding import fold_batchnorm

            self.inference_model = fold_batchnorm(self.model)
        logger.debug(f"{os.path.basename(self.model_path)}: {len(self.load_report.filled)} "
                     f"weighted layers loaded")

    @classmethod
    def from_keras(cls, model, preprocessing="scale01", crop=None, threshold=FALLBACK_THRESHOLD,
                   batch_size=32, letterbox_image=True):
        """A predictor over an in-memory embedding model (e.g. during training)."""
        self = cls.__new__(cls)
        self.__dict__.update(cls._defaults)
        self.__dict__.update(preprocessing=preprocessing, crop=crop,
                             threshold=check_threshold(threshold),
                             batch_size=batch_size, letterbox_image=letterbox_image,
                             workers=default_workers(), fold_batchnorm=False,
                             engine="keras", precision="float32")
        self.card, self.model = None, model
        self.embedding_size = int(model.output.shape[-1])
        self.inference_model = model  # not folded: a live model's weights keep changing
        self.input_shape = tuple(int(s) for s in model.input.shape[1:])
        get_preprocessing(preprocessing)
        self._crop = parse_crop(crop)
        self.align, self.align_margin = "off", DEFAULT_MARGIN
        self._make_preparer()
        self._build_forward()
        return self

    def _build_forward(self):
        """One compiled graph from uint8 crops to embeddings: the preprocessing runs on
        TensorFlow's threads instead of in NumPy in the main thread, between batches."""
        import tensorflow as tf

        from utils.tf_preprocessing import preprocess_tf

        h, w, c = self.input_shape
        self._forward = tf.function(
            lambda x: self.inference_model(preprocess_tf(x, self.preprocessing),
                                            training=False),
            input_signature=[tf.TensorSpec([None, h, w, c], tf.uint8)])
        self._run = lambda x: self._forward(x).numpy()

    # -- embedding ---------------------------------------------------------------------------
    def prepare(self, image):
        """One image (path, PIL image or array) -> a uint8 array at the input size, without
        alignment (the fixed crop, if any, then resizing)."""
        return prepare_image(image, self.input_shape, self.letterbox_image, self._crop)

    def embed_arrays(self, batch, flip=False):
        """Embed a uint8 (N, H, W, 3) batch of prepared images: (N, 128) unit vectors."""
        x = np.asarray(batch)
        if x.dtype != np.uint8:
            raise TypeError(f"embed_arrays takes uint8 crops (N, H, W, 3), got {x.dtype}; "
                            f"use embed() for other images")
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ImageLoadError(f"crops of shape {x.shape} do not fit the model's input "
                                 f"(N, {', '.join(map(str, self.input_shape))}); use embed() "
                                 f"for images of other sizes")
        emb = self._run(x)
        if flip:
            emb = emb + self._run(np.ascontiguousarray(x[:, :, ::-1]))
            emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    def prepare_faces(self, images):
        """Crops of `images` the way embedding sees them (aligned when alignment is on):
        a uint8 (N, H, W, 3) array and the PreparedFace record of each."""
        crops, records = [], []
        for batch, recs in self.preparer.iter_prepared(images, self.batch_size):
            crops.append(batch)
            records += recs
        return np.concatenate(crops), records

    def iter_embeddings(self, images, batch_size=None, flip=False, records=None):
        """Yield (N_i, 128) arrays for consecutive batches of `images`, decoding in threads;
        each image's PreparedFace is appended to `records` when a list is given."""
        for batch, recs in self.preparer.iter_prepared(images, batch_size or self.batch_size):
            if records is not None:
                records += recs
            yield self.embed_arrays(batch, flip=flip)

    def embed(self, images, batch_size=None, flip=False):
        """Embeddings of a list of images (paths, PIL images or arrays): an (N, 128) array."""
        if isinstance(images, (str, os.PathLike)) or not hasattr(images, "__iter__") or (
                isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        parts = list(self.iter_embeddings(images, batch_size, flip))
        if not parts:
            return np.zeros((0, self.embedding_size), np.float32)
        return np.concatenate(parts)

    # -- comparing ---------------------------------------------------------------------------
    def compare(self, image_1, image_2, threshold=None, out=None, show=False):
        """Verification of two face images, optionally drawn side by side (each decoded once)."""
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        faces, records = self.prepare_faces([image_1, image_2])
        e = self.embed_arrays(faces)
        result = Verification(float(np.linalg.norm(e[0] - e[1])), threshold, tuple(records),
                              faces)
        if out or show:
            from utils.plots import draw_pair

            draw_pair(faces[0], faces[1], result, out=out, show=show)
        return result

    def faces(self, image):
        """Every face found in one photo, largest first: (list of AlignedFace, (N, 128)
        embeddings). An empty list when there is none."""
        found = self.aligner.align_all(image)
        if not found:
            return [], np.zeros((0, self.embedding_size), np.float32)
        return found, self.embed_arrays(np.stack([f.image for f in found]))

    def compare_all(self, image_1, image_2=None, threshold=None):
        """Every face of `image_1` against every face of `image_2` (or, with one photo, every
        pair of its faces, i < j). Returns (faces_1, faces_2, results): the AlignedFace lists,
        largest first, and results a list of (i, j, Verification) indexing into them."""
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        faces_1, emb_1 = self.faces(image_1)
        if image_2 is None:
            faces_2, emb_2 = faces_1, emb_1
        else:
            faces_2, emb_2 = self.faces(image_2)
        results = []
        for i in range(len(faces_1)):
            for j in range(len(faces_2)):
                if image_2 is None and j <= i:
                    continue
                d = float(np.linalg.norm(emb_1[i] - emb_2[j]))
                results.append((i, j, Verification(d, threshold)))
        return faces_1, faces_2, results

    def distance(self, image_1, image_2):
        return self.compare(image_1, image_2).distance

    def verify(self, image_1, image_2, threshold=None):
        """Distance, threshold and the same/different decision for two face images."""
        return self.compare(image_1, image_2, threshold)

    def detect_image(self, image_1, image_2, out=None, show=False):
        """The original's call: the L2 distance of two faces, drawn side by side with it."""
        return self.compare(image_1, image_2, out=out, show=show).distance
