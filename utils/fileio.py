"""Atomic file writes: a file is either its old self or its complete new self, never half."""
import contextlib
import functools
import hashlib
import json
import os
import tempfile


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
