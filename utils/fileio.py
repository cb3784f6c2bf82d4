"""Atomic file writes: a file is either its old self or its complete new self, never half.
Also where a weight file's card lives (`card_path_for`)."""
import contextlib
import functools
import hashlib
import json
import os
import tempfile

from utils.errors import FacenetError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    The temporary name keeps the final suffix (Keras checks `.weights.h5` / `.keras`).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    suffix = "".join(base.partition(".")[1:])
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    os.unlink(tmp)  # writers such as h5py want to create the file themselves
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_text_lines(path, error, what):
    """The lines of a UTF-8 text file (LF, CRLF or CR ends). A folder, or bytes that are not
    UTF-8, raise `error` (a FacenetError class) naming the file, and the line, and `what` it
    should have been."""
    if os.path.isdir(path):
        raise error(f"{path} is a folder; give {what}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error(f"{path}:{line}: byte 0x{data[e.start]:02x} is not UTF-8 text; is this "
                    f"{what}?") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def nearest_existing(path):
    """The closest existing folder (or file in the way) above `path`: where writing it would
    start, or fail."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def check_output_file(path, option):
    """Fail before the work, not after it: `path` (given as `option`) must name a file, in a
    folder that exists or can be made and is writable."""
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise FacenetError(f"{option} {path} is a folder; give a file name in it")
    folder = nearest_existing(path)
    if not os.path.isdir(folder):
        raise FacenetError(f"{option} {path}: {folder} is a file, not a folder; choose another "
                           f"{option}")
    if not os.access(folder, os.W_OK):
        raise FacenetError(f"{option} {path}: the folder {folder} is not writable; choose "
                           f"another {option}")


def card_path_for(weights_file):
    """The card beside a weight file: same stem, `.json`. (Here, below every writer of
    weights; facenet.weights re-exports it.)"""
    stem = os.fspath(weights_file)
    for suffix in (".weights.h5", ".keras", ".h5"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem + ".json"


def write_json_atomic(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")


def sha256_of(path):
    """sha256 of a file, remembered per (path, inode, size, modification time): checking a
    90 MB weight file against its card on every start costs one read, not several. (Our
    writers replace files by rename, so a rewritten file has a new inode.)"""
    st = os.stat(path)
    return _sha256(os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path, inode, size, mtime_ns, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
