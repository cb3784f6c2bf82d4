"""A face gallery: enroll known people, identify faces, and answer "unknown" when nobody matches.

    python -m facenet.gallery enroll  GALLERY.npz people/      # people/<name>/*.jpg
    python -m facenet.gallery identify GALLERY.npz photo.jpg [--top-k 5] [--all-faces]
    python -m facenet.gallery list    GALLERY.npz
    python -m facenet.gallery remove  GALLERY.npz NAME [NAME ...]

The gallery is one `.npz` file: every enrolled embedding with its person and source photo,
each person's mean embedding, and the model it was made with (a gallery only makes sense with
the model that made it). Search is exact: one matrix product over all embeddings, then the best
distance per person. A face whose nearest person is farther than the threshold is "unknown": a
gallery must be able to say it does not know someone.

The threshold: a face is compared with every enrolled person, so the verification threshold of
one comparison would let a stranger match someone in a large gallery almost always. By default
the gallery reads, from the model card's table of impostor distances, the distance at which one
comparison falsely accepts `target_far / people` of strangers (1% over the whole gallery), and
never goes above the card's verification threshold. `--threshold` sets it by hand.
"""
import dataclasses
import json
import os

import numpy as np

from utils.errors import FacenetError

GALLERY_VERSION = 1
TARGET_FAR = 0.01  # chance that a stranger is named someone, over the whole gallery


def identification_threshold(verification, far_table, people, target_far=TARGET_FAR):
    """The distance threshold for a gallery of `people`: the impostor distance at a
    per-comparison false-accept rate of target_far / people (log-linear between the table's
    points), capped by the verification threshold. Without a table: the verification one."""
    if not far_table or people < 1:
        return verification
    fars, dists = np.array(sorted((float(k), float(v)) for k, v in far_table.items())).T
    per = np.clip(target_far / people, fars[0], fars[-1])
    d = float(np.interp(np.log10(per), np.log10(fars), dists))
    return min(float(verification), d)


class GalleryError(FacenetError):
    """A gallery file that cannot be used as asked (wrong model, damaged, missing)."""


@dataclasses.dataclass
class Identification:
    """Who a face is: `name` (None when unknown), its distance, the top-k (name, distance)
    candidates, and why it is unknown when it is."""
    name: object
    distance: float
    threshold: float
    candidates: list
    reason: str = ""

    @property
    def known(self):
        return self.name is not None

    def __str__(self):
        if not self.known:
            return f"unknown ({self.reason})"
        return f"{self.name} (distance {self.distance:.4f} < {self.threshold:.4f})"


def model_identity(predictor):
    """What must match between a gallery and the predictor that searches it."""
    card = predictor.card or {}
    from utils.fileio import sha256_of

    return {"model": card.get("name") or os.path.basename(str(predictor.model_path)),
            "weights_sha256": card.get("weights_sha256") or sha256_of(predictor.model_path),
            "embedding_size": int(predictor.model.output.shape[-1]),
            "input_shape": list(predictor.input_shape),
            "align": predictor.align != "off"}


class Gallery:
    """Enrolled embeddings grouped by person. Load with `Gallery.load(path)` or start empty
    with `Gallery(path, identity)`; `save()` writes atomically."""

    def __init__(self, path, identity=None, threshold=None, far_table=None):
        self.path = os.fspath(path)
        self.identity = identity
        self.threshold = threshold  # the model card's verification threshold
        self.far_table = far_table  # the card's impostor distances by false-accept rate
        self.names = []  # person names, index = label
        self.embeddings = np.zeros((0, 0), np.float32)
        self.labels = np.zeros(0, np.int64)
        self.sources = np.zeros(0, dtype=object)  # where each embedding came from
        self.keys = np.zeros(0, dtype=object)  # content hash of each source photo
        self._reindex()

    # -- file --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise GalleryError(f"no gallery at {path}; make one with "
                               f"`python -m facenet.gallery enroll {path} PEOPLE_DIR`")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                g = cls(path, meta["identity"], meta.get("threshold"), meta.get("far_table"))
                g.names = [str(n) for n in z["names"]]
                g.embeddings = z["embeddings"].astype(np.float32)
                g.labels = z["labels"].astype(np.int64)
                g.sources = z["sources"].astype(object)
                g.keys = z["keys"].astype(object)
        except (OSError, ValueError, KeyError) as e:
            raise GalleryError(f"{path} is not a readable gallery ({type(e).__name__}: {e}); "
                               f"delete it and enroll again") from None
        if meta.get("version", 0) > GALLERY_VERSION:
            raise GalleryError(f"{path} was written by a newer version of this library")
        g._reindex()
        return g

    def save(self):
        from utils.fileio import atomic_path

        meta = {"version": GALLERY_VERSION, "identity": self.identity,
                "threshold": self.threshold, "far_table": self.far_table}
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, meta=np.array(json.dumps(meta)),
                         names=np.array(self.names, dtype=str),
                         embeddings=self.embeddings, labels=self.labels,
                         means=self.means, sources=np.array(self.sources.tolist(), dtype=str),
                         keys=np.array(self.keys.tolist(), dtype=str))

    # -- contents ----------------------------------------------------------------------------
    def _reindex(self):
        """Keep rows grouped by person (contiguous labels) and people without rows dropped,
        so a search is one matrix product and one reduceat."""
        used = np.unique(self.labels)
        if len(used) != len(self.names):
            remap = -np.ones(len(self.names), np.int64)
            remap[used] = np.arange(len(used))
            self.names = [self.names[i] for i in used]
            self.labels = remap[self.labels]
        order = np.argsort(self.labels, kind="stable")
        self.embeddings = self.embeddings[order]
        self.labels, self.sources, self.keys = (self.labels[order], self.sources[order],
                                                self.keys[order])
        self._starts = np.searchsorted(self.labels, np.arange(len(self.names)))
        counts = np.diff(np.append(self._starts, len(self.labels)))
        if len(self.names):
            means = np.add.reduceat(self.embeddings, self._starts, axis=0) / counts[:, None]
            self.means = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        else:
            self.means = np.zeros((0, self.embeddings.shape[1]), np.float32)
        self._index = {n: i for i, n in enumerate(self.names)}

    def __len__(self):
        return len(self.labels)

    def people(self):
        """{name: number of embeddings}."""
        counts = np.bincount(self.labels, minlength=len(self.names))
        return {n: int(c) for n, c in zip(self.names, counts)}

    def check_model(self, predictor):
        identity = model_identity(predictor)
        if self.identity is None:
            self.identity = identity
            self.threshold = predictor.threshold
            section = predictor.card_section()
            self.far_table = (section.get("identification") or {}).get("impostor_far")
            return
        diff = [k for k in ("model", "weights_sha256", "embedding_size", "align")
                if self.identity.get(k) != identity.get(k)]
        if diff:
            raise GalleryError(
                f"{self.path} was made with model {self.identity['model']} "
                f"(weights {self.identity['weights_sha256'][:12]}, alignment "
                f"{'on' if self.identity['align'] else 'off'}); this one is "
                f"{identity['model']} (weights {identity['weights_sha256'][:12]}, alignment "
                f"{'on' if identity['align'] else 'off'}). Embeddings of different models "
                f"cannot be compared: use the gallery's model or enroll into a new gallery.")

    def add(self, name, embeddings, sources, keys=None):
        """Add one person's embeddings (unit vectors) to the gallery (in memory)."""
        embeddings = np.asarray(embeddings, np.float32).reshape(len(sources), -1)
        if len(self) and embeddings.shape[1] != self.embeddings.shape[1]:
            raise GalleryError(f"embeddings of size {embeddings.shape[1]} do not fit a gallery "
                               f"of size {self.embeddings.shape[1]}")
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
        label = self._index[name]
        self.embeddings = embeddings if not len(self) else np.concatenate(
            [self.embeddings, embeddings])
        self.labels = np.concatenate([self.labels, np.full(len(sources), label)])
        self.sources = np.concatenate([self.sources, np.array(list(sources), dtype=object)])
        keys = list(keys) if keys is not None else [""] * len(sources)
        self.keys = np.concatenate([self.keys, np.array(keys, dtype=object)])
        self._reindex()

    def remove(self, name):
        """Remove a person and all their embeddings; returns how many were removed."""
        if name not in self._index:
            raise GalleryError(f"{name!r} is not in {self.path}; "
                               f"enrolled: {', '.join(self.names[:10]) or 'nobody'}")
        keep = self.labels != self._index[name]
        removed = int((~keep).sum())
        self.embeddings, self.labels = self.embeddings[keep], self.labels[keep]
        self.sources, self.keys = self.sources[keep], self.keys[keep]
        self._reindex()
        return removed

    def has_photo(self, name, key):
        i = self._index.get(name)
        return i is not None and bool(np.any((self.labels == i) & (self.keys == key)))

    # -- search ------------------------------------------------------------------------------
    def search(self, queries, top_k=5, match="nearest"):
        """Exact search: for each query embedding, the top_k people by distance.
        match="nearest": a person's distance is that of their closest enrolled embedding;
        "mean": the distance to their mean embedding. Returns (names idx (Q, k), dist (Q, k))."""
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if match == "mean":
            sims = q @ self.means.T
        elif match == "nearest":
            sims = np.maximum.reduceat(q @ self.embeddings.T, self._starts, axis=1)
        else:
            raise ValueError(f"match must be 'nearest' or 'mean', got {match!r}")
        k = min(top_k, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-part, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        best = np.take_along_axis(part, order, axis=1)
        return idx, np.sqrt(np.maximum(2.0 - 2.0 * best, 0.0))

    def default_threshold(self, target_far=TARGET_FAR):
        """The identification threshold for this gallery's size (see the module docstring)."""
        if self.threshold is None:
            raise GalleryError(f"{self.path} has no threshold yet: enroll someone first, or "
                               f"give --threshold")
        return identification_threshold(self.threshold, self.far_table, len(self.names),
                                         target_far)

    def identify_embeddings(self, queries, threshold=None, top_k=5, match="nearest",
                            target_far=TARGET_FAR):
        """An Identification for each query embedding."""
        if threshold is None:
            threshold = (self.default_threshold(target_far) if self.threshold is not None
                         else float("nan"))
        threshold = float(threshold)
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if not len(self):
            return [Identification(None, float("inf"), threshold, [],
                                   f"the gallery {self.path} is empty: enroll people first")
                    for _ in q]
        idx, dist = self.search(q, top_k, match)
        out = []
        for row_i, row_d in zip(idx, dist):
            cands = [(self.names[i], float(d)) for i, d in zip(row_i, row_d)]
            name, d = cands[0]
            if d < threshold:
                out.append(Identification(name, d, threshold, cands))
            else:
                out.append(Identification(None, d, threshold, cands,
                                          f"nearest is {name} at {d:.4f}, not below the "
                                          f"threshold {threshold:.4f}"))
        return out


# -- command line ----------------------------------------------------------------------------
def _predictor(args):
    from facenet import Facenet

    return Facenet(model_path=args.model_path, align="off" if args.no_align else "auto")


def _open(path, create=False):
    if create and not os.path.exists(path):
        return Gallery(path)
    return Gallery.load(path)


def main(argv=None):
    import argparse
    import sys

    from utils.quiet import quiet_tensorflow

    argv = quiet_tensorflow(argv)  # before TensorFlow loads: its chatter off the terminal
    p = argparse.ArgumentParser(prog="python -m facenet.gallery", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def model_options(sp):
        sp.add_argument("--model-path", default=None,
                        help="weights (default: the pretrained model); must be the gallery's")
        sp.add_argument("--no-align", action="store_true",
                        help="the photos are face crops already: no face search")
        sp.add_argument("--threshold", type=float, default=None,
                        help="distance below which a face is that person (default: from the "
                             "model card, for the gallery's size and --target-far)")
        sp.add_argument("--target-far", type=float, default=TARGET_FAR,
                        help="accepted chance that a stranger is named someone "
                             "(default: %(default)s)")

    sp = sub.add_parser("enroll", help="add people (a folder of <name>/ photo folders) or "
                                       "photos of one person (--name)")
    sp.add_argument("gallery")
    sp.add_argument("paths", nargs="+", help="PEOPLE_DIR, or photos with --name")
    sp.add_argument("--name", default=None, help="enroll the given photos as this person")
    model_options(sp)
    sp = sub.add_parser("identify", help="who is in these photos?")
    sp.add_argument("gallery")
    sp.add_argument("images", nargs="+")
    sp.add_argument("--top-k", type=int, default=5)
    sp.add_argument("--all-faces", action="store_true", help="every face of each photo")
    sp.add_argument("--match", default="nearest", choices=["nearest", "mean"],
                    help="a person's distance: to their nearest photo or to their mean")
    model_options(sp)
    sp = sub.add_parser("list", help="the people enrolled")
    sp.add_argument("gallery")
    sp = sub.add_parser("remove", help="remove people")
    sp.add_argument("gallery")
    sp.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    try:
        run(args)
    except (FacenetError, ValueError) as e:
        sys.exit(f"error: {e}")


def run(args):
    from facenet import enrollment

    if args.command == "list":
        g = Gallery.load(args.gallery)
        people = g.people()
        threshold = f"{g.default_threshold():.4f}" if g.threshold is not None else "-"
        print(f"{args.gallery}: {len(people)} people, {len(g)} embeddings, model "
              f"{(g.identity or {}).get('model', '-')}, identification threshold {threshold} "
              f"(verification {g.threshold})")
        for name, n in people.items():
            print(f"  {name}: {n}")
    elif args.command == "remove":
        g = Gallery.load(args.gallery)
        for name in args.names:
            print(f"removed {name} ({g.remove(name)} embeddings)")
        g.save()
    elif args.command == "enroll":
        g = _open(args.gallery, create=True)
        model = _predictor(args)
        if args.name:
            added, already, skipped = enrollment.enroll_images(g, model, args.name, args.paths)
            g.save()
            print(f"{args.name}: added {added} photo(s), {already} already enrolled, "
                  f"{len(skipped)} skipped")
        else:
            if len(args.paths) != 1 or not os.path.isdir(args.paths[0]):
                raise GalleryError("give one folder of <name>/ photo folders, or photos "
                                   "with --name NAME")
            t = enrollment.enroll_folder(g, model, args.paths[0])
            print(f"{t['people']} people: added {t['added']} photo(s), {t['already']} already "
                  f"enrolled, {t['skipped']} skipped")
        print(f"{args.gallery}: {len(g.names)} people, {len(g)} embeddings")
    elif args.command == "identify":
        g = Gallery.load(args.gallery)
        model = _predictor(args)
        for image in args.images:
            results = enrollment.identify_image(g, model, image, args.threshold, args.top_k,
                                                args.all_faces, args.match, args.target_far)
            if not results:
                print(f"{image}: no face found")
            for k, (face, ident) in enumerate(results, start=1):
                where = f" face {k}" if args.all_faces else ""
                print(f"{image}{where}: {ident}")
                for name, d in ident.candidates:
                    print(f"    {name:30s} {d:.4f}")


if __name__ == "__main__":
    main()
