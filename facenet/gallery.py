"""A face gallery: enroll known people, identify faces, and answer "unknown" when nobody matches.

    python -m facenet.gallery enroll  GALLERY.db people/      # people/<name>/*.jpg
    python -m facenet.gallery identify GALLERY.db photo.jpg [--top-k 5] [--all-faces]
    python -m facenet.gallery list    GALLERY.db
    python -m facenet.gallery remove  GALLERY.db NAME [NAME ...]

The gallery is one SQLite file (facenet.gallery_store): every enrolled embedding with its
person and source photo, and the model it was made with (a gallery only makes sense with the
model that made it). Each enroll or remove is one transaction: enrollers may run side by side,
and a killed one loses only its unfinished person. A name ending in `.npz` means the `.db`
beside it, imported once from that `.npz` (the earlier format). Search is exact, in memory: one
matrix product over all embeddings, then the best distance per person. A face whose nearest
person is farther than the threshold is "unknown": a gallery must be able to say it does not
know someone.

The threshold: a face is compared with every enrolled person, so the verification threshold of
one comparison would let a stranger match someone in a large gallery almost always. By default
the gallery reads, from the model card's table of impostor distances, the distance at which one
comparison falsely accepts `target_far / people` of strangers (1% over the whole gallery), and
never goes above the card's verification threshold. `--threshold` sets it by hand. A model
whose card has no such table cannot choose a threshold that keeps strangers unknown (its
verification threshold would name nearly every stranger): identifying with it then needs
`--threshold`, and says so.

A person's name is stored in Unicode NFC without surrounding whitespace; names that differ
only by case are refused as a clash, as are empty names and control characters. One Gallery may
be shared between threads: its calls take a lock.
"""
import contextlib
import dataclasses
import functools
import logging
import os
import threading
import unicodedata

import numpy as np

from facenet import gallery_store
from facenet.gallery_store import GalleryError
from facenet.cli import (BACKBONE_HELP, PRECISION_HELP, add_engine_option, add_logging_options,
                         configure_logging, existing_file)
from utils.checks import check_rate, check_threshold, rate_arg, threshold_arg
from utils.choices import BACKBONES, PRECISIONS
from utils.errors import SettingError, cli_errors
from utils.precision import DEFAULT_PRECISION

TARGET_FAR = 0.01  # chance that a stranger is named someone, over the whole gallery
# A person's distance to a query: to their nearest enrolled embedding, or to their mean.
MATCHES = ("nearest", "mean")

logger = logging.getLogger(__name__)


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
            "embedding_size": int(predictor.embedding_size),
            "input_shape": list(predictor.input_shape),
            "align": predictor.align != "off",
            "engine": predictor.engine, "precision": predictor.precision}


def engine_mismatch(made, given):
    """How a gallery's engine and precision differ from a predictor's, or None. Galleries made
    before there were engines were made by Keras, precision unrecorded."""
    engine, precision = made.get("engine", "keras"), made.get("precision")
    if given.get("engine") is None or engine == given.get("engine") and precision in (None, given.get("precision")):
        return None
    return (f"its embeddings were made by {engine} {precision or ''}".rstrip() +
            f", this predictor runs {given.get('engine')} {given.get('precision')}")


def clean_name(name):
    """A person's name as stored: Unicode NFC (a composed and a decomposed "José" are one
    person), without surrounding whitespace. Empty names and control characters (a newline
    would split `gallery list`'s lines) are a GalleryError."""
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, got {name!r}")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise GalleryError(f"a person's name must not be empty, got {name!r}")
    bad = [c for c in clean if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if bad:
        raise GalleryError(f"the name {name!r} holds the control character {bad[0]!r}: give "
                           f"the name on one line, without control characters")
    return clean


def _locked(method):
    """Run the method under the gallery's lock: one Gallery may serve several threads."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return run


def check_top_k(top_k):
    """Refuse a top-k that would leave no candidate to answer with."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise SettingError(f"top-k must be a whole number of 1 or more, got {top_k!r}")


class Gallery:
    """Enrolled embeddings grouped by person, searched in memory and kept in an SQLite file
    (facenet.gallery_store). `Gallery(path)` opens what is at `path`, or starts it empty;
    `Gallery.load(path)` insists that a gallery is there; `Gallery.create(path, replace=True)`
    starts over. Every change (add, remove, a new gallery's model) is committed when made; the
    view follows what other processes commit."""

    def __init__(self, path, identity=None, threshold=None, far_table=None, *, create=True):
        """`identity`, `threshold`, `far_table`: the model of a new gallery (as check_model
        takes them from a predictor); a gallery that has a model keeps it and refuses
        another. `path` ":memory:" keeps nothing."""
        self.path = gallery_store.store_path(path)
        self._lock = threading.RLock()
        self._db, self.imported_from = gallery_store.connect(path, create)
        self.read_only = gallery_store.is_read_only(self._db)
        self._version = None
        self._sync()
        self._adopt(identity, threshold, far_table)
        logger.debug(f"{self.path}: {len(self.names)} people, {len(self)} embeddings, model "
                     f"{(self.identity or {}).get('model', 'none yet')}")

    # -- file --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path):
        """The gallery at `path`; GalleryError when there is none."""
        return cls(path, create=False)

    @classmethod
    def create(cls, path, identity=None, threshold=None, far_table=None, replace=False):
        """A new, empty gallery at `path`; one with people there is an error unless
        `replace`, which deletes them (in one transaction)."""
        g = cls(path)
        with g._writing() as db:
            if len(g.labels) and not replace:
                raise GalleryError(f"{g.path} already holds {len(g.names)} people: open it "
                                   f"with Gallery(path), or pass replace=True to start over")
            gallery_store.clear(db)
            g.identity = g.threshold = g.far_table = None
            g._set_rows([], np.zeros((0, 0), np.float32), np.zeros(0, np.int64),
                        np.zeros(0, object), np.zeros(0, object))
        g._adopt(identity, threshold, far_table)
        return g

    @_locked
    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _sync(self):
        """Re-read the file when another connection committed since the last read."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            meta, *rows = gallery_store.read(self._db, self.path)
            self.identity = meta.get("identity")
            self.threshold = meta.get("threshold")  # the model card's verification threshold
            self.far_table = meta.get("far_table")  # its impostor distances by false-accept rate
            self._set_rows(*rows)
            self._version = version

    @contextlib.contextmanager
    def _writing(self):
        """A write transaction over an up-to-date view; if it fails, the view (which may
        hold the unwritten change) is re-read on next use."""
        if self.read_only:
            raise GalleryError(f"{self.path} is read-only (a read-only file or file system): "
                               f"it can be listed and searched, not changed; copy it somewhere "
                               f"writable to change it")
        try:
            with gallery_store.transaction(self._db, self.path) as db:
                self._sync()
                yield db
        except BaseException:
            self._version = None
            raise

    def _set_rows(self, names, embeddings, labels, sources, keys):
        self.names = list(names)  # person names, index = label
        self.embeddings, self.labels = embeddings, labels
        self.sources, self.keys = sources, keys  # each photo's file and content hash
        self._reindex()

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

    @_locked
    def __len__(self):
        self._sync()
        return len(self.labels)

    @_locked
    def people(self):
        """{name: number of embeddings}."""
        self._sync()
        counts = np.bincount(self.labels, minlength=len(self.names))
        return {n: int(c) for n, c in zip(self.names, counts)}

    @_locked
    def check_model(self, predictor):
        """Take the predictor's model for a new gallery; refuse it for one made with another."""
        card = (predictor.card_section().get("identification") or {}).get("impostor_far")
        self._adopt(model_identity(predictor), predictor.threshold, card)

    def _adopt(self, identity, threshold, far_table):
        given = {"identity": identity, "threshold": threshold, "far_table": far_table}
        given = {k: v for k, v in given.items() if v is not None}
        self._sync()
        if given and self.identity is None:  # a new gallery: settle its model under the lock
            with self._writing() as db:
                if self.identity is None:
                    gallery_store.write_meta(db, **given)
                    for k, v in given.items():
                        setattr(self, k, v)
        if identity is None:
            return
        diff = [k for k in gallery_store.IDENTITY_KEYS if self.identity.get(k) != identity.get(k)]
        if not diff and far_table and not self.far_table and not self.read_only:
            # the same model's card gained its impostor table since the gallery was made
            with self._writing() as db:
                gallery_store.write_meta(db, far_table=far_table)
                self.far_table = far_table
        if diff:
            raise GalleryError(
                f"{self.path} was made with model {self.identity['model']} "
                f"(weights {self.identity['weights_sha256'][:12]}, alignment "
                f"{'on' if self.identity['align'] else 'off'}); this one is "
                f"{identity['model']} (weights {identity['weights_sha256'][:12]}, alignment "
                f"{'on' if identity['align'] else 'off'}). Embeddings of different models "
                f"cannot be compared: use the gallery's model or enroll into a new gallery.")
        mismatch = engine_mismatch(self.identity, identity)
        if mismatch:
            made = f"--engine {self.identity.get('engine', 'keras')}" + (
                f" --precision {self.identity['precision']}" if self.identity.get("precision")
                else "")
            raise GalleryError(
                f"{self.path}: {mismatch}; their distances differ slightly, so they are not "
                f"mixed. Use {made} (Facenet(engine=..., precision=...)) with this gallery, or "
                f"enroll the photos again into a new gallery.")

    def _clash(self, name):
        """The enrolled name that differs from `name` only by case, or None."""
        folded = name.casefold()
        return next((n for n in self.names if n != name and n.casefold() == folded), None)

    @_locked
    def add(self, name, embeddings, sources, keys=None):
        """Add one person's embeddings (unit vectors), committed at once. A photo (by its
        key) that the person has already is skipped; returns how many were added. The name
        is cleaned (clean_name); one that differs from an enrolled one only by case is an
        error."""
        name = clean_name(name)
        sources = list(sources)
        embeddings = np.asarray(embeddings, np.float32).reshape(len(sources), -1)
        keys = [str(k) for k in keys] if keys is not None else [""] * len(sources)
        bad = gallery_store.unit_row_problem(embeddings)
        if bad:
            raise GalleryError(f"cannot add {name!r} to {self.path}: embedding {bad[0]} "
                               f"({sources[bad[0]]}) {bad[1]}; give unit vectors of the "
                               f"gallery's model")
        with self._writing() as db:
            size = (self.embeddings.shape[1] if len(self.labels)
                    else (self.identity or {}).get("embedding_size"))
            if size is not None and embeddings.shape[1] != size:
                raise GalleryError(f"embeddings of size {embeddings.shape[1]} do not fit "
                                   f"{self.path}, whose embeddings are of size {size}")
            other = self._clash(name)
            if other is not None:
                raise GalleryError(f"{name!r} differs from {other!r}, enrolled in {self.path}, "
                                   f"only by case: enroll the photos as {other!r}, or remove "
                                   f"{other!r} first")
            seen = set(self.keys[self.labels == self._index[name]]) if (
                name in self._index) else set()
            new = []
            for i, k in enumerate(keys):
                if not k or k not in seen:
                    new.append(i)
                    seen.add(k)
            if new:
                gallery_store.insert_photos(db, name, embeddings[new],
                                            [sources[i] for i in new], [keys[i] for i in new])
                self._append(name, embeddings[new], [sources[i] for i in new],
                             [keys[i] for i in new])
        return len(new)

    def _append(self, name, embeddings, sources, keys):
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
        label = self._index[name]
        self.embeddings = embeddings if not len(self.labels) else np.concatenate(
            [self.embeddings, embeddings])
        self.labels = np.concatenate([self.labels, np.full(len(sources), label)])
        self.sources = np.concatenate([self.sources, np.array(sources, dtype=object)])
        self.keys = np.concatenate([self.keys, np.array(keys, dtype=object)])
        self._reindex()

    def remove(self, name):
        """Remove a person and all their embeddings; returns how many were removed."""
        name = clean_name(name)
        return self.remove_people([name])[name]

    @_locked
    def remove_people(self, names):
        """Remove these people, all or (on any error) none, in one transaction; returns
        {name: embeddings removed}."""
        names = [clean_name(n) for n in names]
        with self._writing() as db:
            missing = [n for n in names if n not in self._index]
            if missing:
                raise GalleryError(f"{missing[0]!r} is not in {self.path}; enrolled: "
                                   f"{', '.join(self.names[:10]) or 'nobody'}")
            counts = {}
            for name in names:
                counts[name] = int(np.sum(self.labels == self._index[name]))
                gallery_store.delete_person(db, name)
            keep = ~np.isin(self.labels, [self._index[n] for n in counts])
            self.embeddings, self.labels = self.embeddings[keep], self.labels[keep]
            self.sources, self.keys = self.sources[keep], self.keys[keep]
            self._reindex()
        return counts

    @_locked
    def has_photo(self, name, key):
        self._sync()
        i = self._index.get(name)
        return i is not None and bool(np.any((self.labels == i) & (self.keys == key)))

    # -- search ------------------------------------------------------------------------------
    @_locked
    def search(self, queries, top_k=5, match="nearest"):
        """Exact search: for each query embedding, the top_k people by distance.
        match="nearest": a person's distance is that of their closest enrolled embedding;
        "mean": the distance to their mean embedding. Returns (names idx (Q, k), dist (Q, k))."""
        check_top_k(top_k)
        self._sync()
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if q.shape[1] != self.embeddings.shape[1]:
            raise GalleryError(f"queries of size {q.shape[1]} do not fit {self.path}, whose "
                               f"embeddings are of size {self.embeddings.shape[1]}")
        if match == "mean":
            sims = q @ self.means.T
        elif match == "nearest":
            sims = np.maximum.reduceat(q @ self.embeddings.T, self._starts, axis=1)
        else:
            raise SettingError(f"match must be one of {list(MATCHES)}, got {match!r}")
        k = min(top_k, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-part, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        best = np.take_along_axis(part, order, axis=1)
        return idx, np.sqrt(np.maximum(2.0 - 2.0 * best, 0.0))

    @_locked
    def default_threshold(self, target_far=TARGET_FAR):
        """The identification threshold for this gallery's size (see the module docstring).
        A GalleryError when the model's card has no impostor table: the verification
        threshold would name nearly every stranger, and no fallback to it is silent."""
        target_far = check_rate(target_far, "target_far")
        self._sync()
        if self.threshold is None:
            raise GalleryError(f"{self.path} has no threshold yet: enroll someone first, or "
                               f"give --threshold")
        if not self.far_table:
            model = (self.identity or {}).get("model", "?")
            section = "aligned." if (self.identity or {}).get("align") else ""
            raise GalleryError(
                f"the model {model} of {self.path} has no impostor table on its card "
                f"({section}identification.impostor_far), so no threshold can be chosen that "
                f"keeps strangers unknown (its verification threshold {self.threshold} would "
                f"name nearly every stranger). Give --threshold (threshold=) for this gallery, "
                f"or compute the table with `python -m benchmarks.calibrate_identification`")
        return identification_threshold(self.threshold, self.far_table, len(self.names),
                                         target_far)

    @_locked
    def identify_embeddings(self, queries, threshold=None, top_k=5, match="nearest",
                            target_far=TARGET_FAR):
        """An Identification for each query embedding."""
        check_top_k(top_k)
        target_far = check_rate(target_far, "target_far")
        self._sync()
        if threshold is None and self.threshold is None:
            threshold = float("nan")  # an empty gallery: every answer is "unknown"
        elif threshold is None:
            threshold = self.default_threshold(target_far)
            logger.debug(f"{self.path}: identification threshold {threshold:.4f} for "
                         f"{len(self.names)} people at a false-accept rate of {target_far} "
                         f"(verification {self.threshold})")
        else:
            threshold = check_threshold(threshold)
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if not len(self.labels):
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

    return Facenet(model_path=args.model_path, backbone=args.backbone,
                   engine=args.engine, precision=args.precision,
                   align="off" if args.no_align else "auto")


def _open(path, create=False):
    g = Gallery(path) if create else Gallery.load(path)
    if g.imported_from:
        logger.info(f"imported {g.imported_from} into {g.path}; the gallery is {g.path} from "
                    f"now on (the .npz is no longer read or written)")
    return g


def build_parser():
    import argparse

    p = argparse.ArgumentParser(prog="python -m facenet.gallery", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_logging_options(p)
    sub = p.add_subparsers(dest="command", required=True)

    def model_options(sp):
        sp.add_argument("--model-path", default=None, type=existing_file,
                        help="weights (default: the pretrained model of --backbone); must be "
                             "the gallery's")
        sp.add_argument("--backbone", default=None, choices=BACKBONES, help=BACKBONE_HELP)
        add_engine_option(sp)
        sp.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                        help=PRECISION_HELP)
        sp.add_argument("--no-align", action="store_true",
                        help="the photos are face crops already: no face search")
        sp.add_argument("--threshold", type=threshold_arg, default=None,
                        help="distance below which a face is that person (default: from the "
                             "model card, for the gallery's size and --target-far)")
        sp.add_argument("--target-far", type=rate_arg, default=TARGET_FAR,
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
    sp.add_argument("--match", default="nearest", choices=MATCHES,
                    help="a person's distance: to their nearest photo or to their mean")
    model_options(sp)
    sp = sub.add_parser("list", help="the people enrolled")
    sp.add_argument("gallery")
    sp = sub.add_parser("remove", help="remove people")
    sp.add_argument("gallery")
    sp.add_argument("names", nargs="+")
    for sp in sub.choices.values():  # before or after the sub-command's name
        add_logging_options(sp, sub_command=True)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():
        run(args)


def run(args):
    from facenet import enrollment

    if args.command == "list":
        g = _open(args.gallery)
        people = g.people()
        threshold = "-"
        if g.threshold is not None:
            threshold = (f"{g.default_threshold():.4f}" if g.far_table else
                         "none (no impostor table on the model's card: identify needs "
                         "--threshold)")
        print(f"{g.path}: {len(people)} people, {len(g)} embeddings, model "
              f"{(g.identity or {}).get('model', '-')}, identification threshold {threshold} "
              f"(verification {g.threshold})")
        for name, n in people.items():
            print(f"  {name}: {n}")
    elif args.command == "remove":
        counts = _open(args.gallery).remove_people(args.names)
        for name, n in counts.items():  # said only once all of it is committed
            print(f"removed {name} ({n} embeddings)")
    elif args.command == "enroll":
        g = _open(args.gallery, create=True)
        model = _predictor(args)
        if args.name:
            added, already, skipped = enrollment.enroll_images(g, model, args.name, args.paths)
            print(f"{args.name}: added {added} photo(s), {already} already enrolled, "
                  f"{len(skipped)} skipped")
        else:
            if len(args.paths) != 1 or not os.path.isdir(args.paths[0]):
                raise GalleryError("give one folder of <name>/ photo folders, or photos "
                                   "with --name NAME")
            t = enrollment.enroll_folder(g, model, args.paths[0], progress=not args.quiet)
            print(f"{t['people']} people: added {t['added']} photo(s), {t['already']} already "
                  f"enrolled, {t['skipped']} skipped")
        print(f"{g.path}: {len(g.people())} people, {len(g)} embeddings")
    elif args.command == "identify":
        check_top_k(args.top_k)
        g = _open(args.gallery)
        model = _predictor(args)
        for image in args.images:
            results = enrollment.identify_image(g, model, image, args.threshold, args.top_k,
                                                args.all_faces, args.match, args.target_far)
            if not results:
                print(f"{image}: no face found")
            for k, (face, ident) in enumerate(results, start=1):
                where = f" face {k}" if args.all_faces else ""
                if args.all_faces:  # which face is which: its box, as predict.py prints it
                    x0, y0, x1, y1 = face.face.box
                    where += f" at box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})"
                print(f"{image}{where}: {ident}")
                for name, d in ident.candidates:
                    print(f"    {name:30s} {d:.4f}")


if __name__ == "__main__":
    main()
