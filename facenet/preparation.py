"""Turn a batch of photos into model-ready face crops, with or without alignment.

`FacePreparer` decodes in threads, runs the detector once per batch (MTCNN batches images of one
size), aligns the chosen face, and falls back to the fixed crop where no face is found (unless
alignment is "required"). Each image's outcome is kept in `PreparedFace` records so callers can
say which face was used or count the fallbacks; aligned crops of image files can be cached.
"""
import collections
import dataclasses
import logging
import os

import numpy as np

from facenet.align import Face, choose_face
from facenet.batching import iter_batches
from utils.errors import ImageLoadError, SettingError
from utils.image import load_image

ALIGN_MODES = ("auto", "required", "off")

logger = logging.getLogger(__name__)


def align_mode(value):
    """Normalise the `align` setting: True -> "required", False/None -> "off"."""
    if value is True:
        return "required"
    if value is False or value is None:
        return "off"
    if value not in ALIGN_MODES:
        raise SettingError(f"align must be one of {ALIGN_MODES} (or True/False), got {value!r}")
    return value


@dataclasses.dataclass
class PreparedFace:
    """How one image became a crop: "aligned", "fallback" (no face found) or "fixed" (no
    alignment asked); the face used, how many were found, and whether it came from the cache."""
    source: str
    how: str
    face: object = None  # facenet.align.Face
    faces_found: int = 0
    cached: bool = False


def _source_name(item):
    return os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"<{type(item).__name__}>"


def _numbered(load):
    """load() over (index, item): an in-memory image's error says which of the list it is
    (a file's already names the file)."""
    def run(numbered):
        index, item = numbered
        try:
            return load(item)
        except ImageLoadError as e:
            if isinstance(item, (str, os.PathLike)):
                raise
            raise ImageLoadError(f"image {index} of the list ({_source_name(item)}): "
                                 f"{e}") from None
    return run


class FacePreparer:
    def __init__(self, fixed_prepare, aligner=None, mode="off", cache=None, workers=2):
        self.fixed_prepare = fixed_prepare  # image -> uint8 crop, the non-aligned way
        self.aligner = aligner
        self.mode = align_mode(mode)
        self.cache = cache
        self.workers = workers
        self.stats = collections.Counter()

    def _load(self, item):
        is_file = isinstance(item, (str, os.PathLike))
        if self.cache is not None and is_file:
            hit = self.cache.get(os.fspath(item))
            if hit is not None and hit[1] is None:
                # no face, known: the fixed crop is made afresh, as this run's crop setting
                # (not part of the cache's key) wants it
                return ("no face", item, load_image(item))
            if hit is not None:
                return ("cached", item, hit)
        return ("image", item, load_image(item))

    def iter_prepared(self, items, batch_size):
        """Yield (uint8 batch, [PreparedFace]) for consecutive batches of `items`."""
        if self.mode == "off":
            for batch in iter_batches(enumerate(items), _numbered(self.fixed_prepare),
                                      batch_size, self.workers):
                self.stats["fixed"] += len(batch)
                yield np.stack(batch), [PreparedFace("", "fixed") for _ in batch]
            return
        for loaded in iter_batches(enumerate(items), _numbered(self._load), batch_size,
                                   self.workers):
            yield self._prepare_batch(loaded)

    def _prepare_batch(self, loaded):
        crops, records = [None] * len(loaded), [None] * len(loaded)
        todo = []
        for i, (kind, item, value) in enumerate(loaded):
            if kind == "no face":
                if self.mode == "required":
                    raise self.aligner.no_face_error(_source_name(item))
                crops[i] = self.fixed_prepare(value)
                records[i] = PreparedFace(_source_name(item), "fallback", cached=True)
            elif kind == "cached":
                crop, info = value
                crops[i] = crop
                records[i] = PreparedFace(_source_name(item), "aligned", Face.from_dict(info),
                                          int(info.get("faces_found", 0)), cached=True)
            else:
                todo.append(i)
        if todo:
            images = [loaded[i][2] for i in todo]
            for i, image, faces in zip(todo, images, self.aligner.detector.detect_many(images)):
                item = loaded[i][1]
                face = choose_face(faces, image.size, self.aligner.choice)
                if face is None:
                    if self.mode == "required":
                        raise self.aligner.no_face_error(_source_name(item))
                    crops[i] = self.fixed_prepare(image)
                    records[i] = PreparedFace(_source_name(item), "fallback")
                else:
                    crops[i] = self.aligner.align_detected(image, face).image
                    records[i] = PreparedFace(_source_name(item), "aligned", face, len(faces))
                if self.cache is not None and isinstance(item, (str, os.PathLike)):
                    info = None if face is None else {**face.to_dict(), "faces_found": len(faces)}
                    self.cache.put(os.fspath(item), crops[i], info)
        for r in records:
            if r.how == "fallback":  # the callers report it (the verdict, the LFW report)
                logger.debug(f"{r.source}: no face found; the fixed crop is used")
            self.stats[r.how] += 1
            self.stats["cached"] += r.cached
        return np.stack(crops), records
