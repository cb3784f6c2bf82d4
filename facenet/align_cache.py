"""A disk cache of aligned face crops, so a second evaluation costs only the embedding.

One folder per alignment settings (a hash of them; `settings.json` inside says which), one
lossless PNG per source image, named by a hash of the image file's bytes (so a moved or renamed
file still hits). The detection travels in the PNG's text chunk: the face's box, landmarks and
confidence, or null when no face was found: then the stored pixels are not used, as the fixed
crop that stands in for the face depends on the run's crop setting, which the key leaves out.
"""
import hashlib
import json
import logging
import os

import numpy as np
from PIL import Image, PngImagePlugin

from utils.fileio import write_json_atomic

# Up by one whenever detection or alignment changes what a crop is: the settings alone do not
# say which code made a crop, and crops left by other code would be served as if current.
CACHE_VERSION = 2

logger = logging.getLogger(__name__)


def default_cache_root():
    from facenet.weights import cache_dir

    return os.path.join(cache_dir(), "aligned")


def settings_key(settings):
    text = json.dumps({"cache_version": CACHE_VERSION, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_key(path):
    from utils.fileio import sha256_of

    return sha256_of(path)[:24]


class AlignCache:
    """get(path) -> (uint8 crop, info dict) or None; put(path, crop, info)."""

    def __init__(self, settings, root=None):
        self.folder = os.path.join(root or default_cache_root(), settings_key(settings))
        os.makedirs(self.folder, exist_ok=True)
        marker = os.path.join(self.folder, "settings.json")
        if not os.path.exists(marker):
            write_json_atomic(marker, settings)
        self._keys = {}
        self._write_failed = False  # said once: a full disk fails every write after it
        logger.debug(f"alignment cache: {self.folder}")

    def _file(self, path):
        key = self._keys.get(path)
        if key is None:
            key = self._keys[path] = image_key(path)
        return os.path.join(self.folder, key + ".png")

    def get(self, path):
        file = self._file(path)
        if not os.path.exists(file):
            return None
        try:
            with Image.open(file) as im:
                im.load()
                info = json.loads(im.text.get("face", "null"))
                return np.asarray(im.convert("RGB"), dtype=np.uint8), info
        except Exception:  # a damaged entry is recomputed, never trusted
            return None

    def put(self, path, crop, info):
        meta = PngImagePlugin.PngInfo()
        meta.add_text("face", json.dumps(info))
        file = self._file(path)
        tmp = f"{file}.{os.getpid()}.tmp"  # renamed into place: readers never see half a file
        try:
            Image.fromarray(crop).save(tmp, format="PNG", pnginfo=meta, compress_level=1)
            os.replace(tmp, file)
        except OSError as e:  # a full or read-only disk costs speed, not the result
            say = logger.debug if self._write_failed else logger.warning
            say(f"cannot write the alignment cache {file}: {e}")
            self._write_failed = True
            if os.path.exists(tmp):
                os.unlink(tmp)
