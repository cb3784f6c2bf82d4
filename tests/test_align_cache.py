"""The aligned-crop cache: keyed by image content and alignment settings; a damaged entry is
recomputed, never trusted; a cache that cannot be written costs speed, not the result."""
import json
import logging
import os
import shutil

import numpy as np
import pytest

from face_stubs import FACE, FACE_SIZE, fixed_prepare, stub_aligner, write_photos
from facenet.align_cache import AlignCache, image_key
from facenet.preparation import FacePreparer

SETTINGS = {"size": [32, 32], "margin": 0.0}


def crop(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), np.uint8)


def test_entries_are_keyed_by_content_and_settings(tmp_path):
    first, second = write_photos(tmp_path, [FACE_SIZE, FACE_SIZE])
    cache = AlignCache(SETTINGS, root=str(tmp_path / "cache"))
    assert cache.get(first) is None
    info = {**FACE.to_dict(), "faces_found": 1}
    cache.put(first, crop(1), info)
    cache.put(second, crop(2), None)  # no face found: the fixed crop, marked as such
    got, got_info = cache.get(first)
    np.testing.assert_array_equal(got, crop(1))
    assert got_info == info and cache.get(second)[1] is None
    moved = str(tmp_path / "renamed.png")
    shutil.copy(first, moved)
    reopened = AlignCache(SETTINGS, root=str(tmp_path / "cache"))
    np.testing.assert_array_equal(reopened.get(moved)[0], crop(1))  # same bytes, same entry
    other = AlignCache({**SETTINGS, "margin": 0.1}, root=str(tmp_path / "cache"))
    assert other.folder != cache.folder and other.get(first) is None
    with open(os.path.join(cache.folder, "settings.json")) as f:
        assert json.load(f) == SETTINGS


@pytest.mark.parametrize("damage", ["truncated", "not a PNG", "face is not JSON"])
def test_a_damaged_entry_is_recomputed(tmp_path, damage):
    paths = write_photos(tmp_path, [FACE_SIZE, FACE_SIZE])
    aligner = stub_aligner()
    cache = AlignCache(aligner.settings(), root=str(tmp_path / "cache"))

    def prepare():
        crops, records = next(FacePreparer(fixed_prepare, aligner, "auto", cache)
                              .iter_prepared(paths, 2))
        return crops, [r.cached for r in records]

    first, cached = prepare()
    assert cached == [False, False] and aligner.detector.detected == 2
    entry = tmp_path / "cache" / os.path.basename(cache.folder) / f"{image_key(paths[0])}.png"
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "not a PNG":
        entry.write_bytes(b"not an image at all")
    else:
        from PIL import Image, PngImagePlugin

        meta = PngImagePlugin.PngInfo()
        meta.add_text("face", "{broken")
        Image.fromarray(crop()).save(entry, format="PNG", pnginfo=meta)
    assert cache.get(paths[0]) is None
    again, cached = prepare()
    assert cached == [False, True] and aligner.detector.detected == 3  # that image only
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(cache.get(paths[0])[0], first[0])  # written whole again


def test_an_unwritable_cache_warns_once_and_keeps_the_result(tmp_path, caplog):
    path, other = write_photos(tmp_path, [FACE_SIZE, FACE_SIZE])
    cache = AlignCache(SETTINGS, root=str(tmp_path / "cache"))
    shutil.rmtree(cache.folder)  # the disk went away under it
    caplog.set_level(logging.DEBUG, logger="facenet.align_cache")
    cache.put(path, crop(), None)
    cache.put(other, crop(), None)
    said = [(r.levelno, r.getMessage()) for r in caplog.records
            if "cannot write the alignment cache" in r.getMessage()]
    assert [level for level, _ in said] == [logging.WARNING, logging.DEBUG]  # not one per image
    assert cache.get(path) is None and not os.path.exists(cache.folder)
