"""Run in fresh processes by test_gallery_store.py: a writer that enrolls made-up embeddings
(no model, so many can start at once in a second), one transaction per person.

    python -m tests.gallery_writer GALLERY NAME [NAME ...] [--start-file F] [--photos N]
    python -m tests.gallery_writer GALLERY --forever [--photos N]   # person_0, 1, ... until killed

Prints "ready" once imported (then waits for --start-file to appear, so that writers begin
together), and each person's name once their enroll has returned.
"""
import argparse
import itertools
import os
import time
import zlib

import numpy as np



def rows(name, n):
    """n unit embeddings that depend only on the name, so a test can check them."""
    x = np.random.default_rng(zlib.crc32(name.encode())).normal(size=(n, 128))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def photo_keys(name, n):
    return [f"{name}-{j}" for j in range(n)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gallery")
    p.add_argument("names", nargs="*")
    p.add_argument("--start-file", default=None)
    p.add_argument("--photos", type=int, default=3)
    p.add_argument("--forever", action="store_true")
    args = p.parse_args()
    from facenet.gallery import Gallery

    print("ready", flush=True)
    while args.start_file and not os.path.exists(args.start_file):
        time.sleep(0.005)
    g = Gallery(args.gallery)
    names = (f"person_{i}" for i in itertools.count()) if args.forever else args.names
    for name in names:
        keys = photo_keys(name, args.photos)
        g.add(name, rows(name, args.photos), [f"{k}.jpg" for k in keys], keys)
        print(name, flush=True)


if __name__ == "__main__":
    main()
