"""The gallery's file: an SQLite database, written only in transactions.

One row per enrolled photo (person, source, photo hash, embedding as a float32 blob), one per
person, and a few JSON settings (the model's identity, its thresholds). Writers take the lock
when their transaction begins (WAL journal: readers never wait), so enrollers started together
all get in, a killed one leaves every finished transaction in place, and a write that fails
(a full disk) leaves the file as it was. What is read is checked before it is searched: a
damaged file is a `GalleryError` naming the file and the field, never a silent wrong answer.

A name ending in `.npz` (the earlier one-file format) means the `.db` beside it; the first
open imports the `.npz` into it, once, and leaves the `.npz` untouched.

Nothing is written into an SQLite file that is not a gallery (another program's database is
named as such and left alone). A gallery on a read-only file or file system is opened read-only
(listed and searched); a write to it says it is read-only.
"""
import contextlib
import json
import math
import os
import sqlite3
import time
import urllib.parse

import numpy as np

from utils.errors import FacenetError

GALLERY_VERSION = 2  # 1: the .npz file
WAIT_S = 60  # how long a writer waits for another writer's transaction
UNIT_TOLERANCE = 1e-3  # an embedding's length may differ from 1 by this much
IDENTITY_KEYS = ("model", "weights_sha256", "embedding_size", "align")
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE photos (id INTEGER PRIMARY KEY, person INTEGER NOT NULL REFERENCES "
    "people(id), source TEXT NOT NULL, key TEXT NOT NULL, embedding BLOB NOT NULL)",
    "CREATE INDEX photos_person ON photos (person)",
)


class GalleryError(FacenetError):
    """A gallery file that cannot be used as asked (wrong model, damaged, missing)."""


def store_path(path):
    """The database file of `path`: the `.db` beside a name ending in `.npz`."""
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    return root + ".db" if ext.lower() == ".npz" else path


def connect(path, create):
    """(connection, imported .npz or None) for the gallery named `path`, made when `create`
    and absent, imported from the `.npz` it names if that is all there is."""
    path = os.fspath(path)
    db_path = store_path(path)
    legacy = path if db_path != path and os.path.isfile(path) else None
    memory = db_path == ":memory:"
    if not (memory or create or legacy or os.path.exists(db_path)):
        where = db_path if db_path == path else f"{path} or {db_path}"
        raise GalleryError(f"no gallery at {where}; make one with "
                           f"`python -m facenet.gallery enroll {path} PEOPLE_DIR`")
    try:
        if not memory and os.path.exists(db_path) and not _writable(db_path):
            db = _connect_read_only(db_path)
        else:
            if create and not memory:
                os.makedirs(os.path.dirname(os.path.abspath(db_path)), exist_ok=True)
            db = sqlite3.connect(db_path, timeout=WAIT_S, isolation_level=None,
                                 check_same_thread=False)  # Gallery serialises its threads
    except (OSError, sqlite3.Error) as e:
        raise GalleryError(f"cannot open the gallery {db_path} ({e}); check the folder "
                           f"exists and may be written") from None
    try:
        imported = _ensure_schema(db, db_path, legacy, create or memory)
    except BaseException:
        db.close()
        raise
    return db, imported


def _writable(path):
    """Whether this process may write the file and its folder (SQLite keeps its journal
    beside it); False on a read-only file system, even for root."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK)


def _connect_read_only(db_path):
    """A read-only connection. Where SQLite cannot make its shared-memory file beside the
    database (a read-only folder or file system), the file is opened as immutable: nobody
    can change it there."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(db_path))
    for mode in ("mode=ro", "immutable=1"):
        db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=WAIT_S, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            db.close()
            if mode == "immutable=1":
                raise
            continue
        db.execute("PRAGMA query_only = ON")
        return db


def is_read_only(db):
    """True for a connection opened read-only (see connect)."""
    return bool(db.execute("PRAGMA query_only").fetchone()[0])


TABLES = ("meta", "people", "photos")


def _tables(db):
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "ORDER BY name")]


def _has_schema(db):
    """True for a gallery; a GalleryError for another program's database (tables that are
    not a gallery's), which is never written into. One read: a gallery that another process
    makes meanwhile appears whole, in one transaction."""
    tables = _tables(db)
    if set(TABLES) <= set(tables):
        return True
    if tables:
        raise GalleryError(f"{db_path_of(db)} is an SQLite database of something else "
                           f"(tables: {', '.join(tables[:6])}), not a gallery; it was left as "
                           f"it was. Give another file name for the gallery")
    return False


def db_path_of(db):
    return next((r[2] for r in db.execute("PRAGMA database_list") if r[1] == "main"), "?")


def _ensure_schema(db, db_path, legacy, create):
    try:
        if not is_read_only(db):
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = FULL")
        if _has_schema(db):
            return None
        if not (create or legacy):
            raise GalleryError(f"{db_path} is an empty file, not a gallery; delete it, or "
                               f"enroll into it")
        if is_read_only(db):
            raise GalleryError(f"{db_path} is read-only and holds no gallery yet: give a file "
                               f"that may be written")
        _switch_to_wal(db)
    except sqlite3.DatabaseError as e:
        raise GalleryError(f"{db_path} is not a readable gallery ({e}): give the gallery's "
                           f"file, or a new file name to start one") from None
    with transaction(db, db_path):
        if _has_schema(db):  # another process made it while we waited for the lock
            return None
        for statement in SCHEMA:
            db.execute(statement)
        write_meta(db, version=GALLERY_VERSION)
        if legacy:
            import_npz(db, legacy)
    return legacy


def _switch_to_wal(db):
    """WAL mode (readers go on while one process writes). The switch needs the file alone for
    a moment, and when new connections switch together SQLite answers "locked" at once rather
    than waiting (it would deadlock otherwise): try again until WAIT_S has passed."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def transaction(db, path):
    """A write transaction that holds the lock from its start: it either commits whole or
    leaves the file as it was; an SQLite failure (full disk, lock held too long) becomes one
    GalleryError naming the file."""
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    except BaseException as e:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
            db.execute("ROLLBACK")
        if isinstance(e, sqlite3.Error):
            raise GalleryError(f"could not write the gallery {path} ({e}); nothing was "
                               f"changed") from None
        raise


def write_meta(db, **fields):
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                   [(k, json.dumps(v)) for k, v in fields.items()])


def clear(db):
    """Delete everything: people, photos and the model's settings."""
    db.execute("DELETE FROM photos")
    db.execute("DELETE FROM people")
    db.execute("DELETE FROM meta WHERE key != 'version'")


def insert_photos(db, name, embeddings, sources, keys):
    """Add rows for one person (made if new)."""
    db.execute("INSERT OR IGNORE INTO people (name) VALUES (?)", (name,))
    person = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]
    rows = np.ascontiguousarray(embeddings, "<f4")
    db.executemany("INSERT INTO photos (person, source, key, embedding) VALUES (?, ?, ?, ?)",
                   [(person, str(s), str(k), r.tobytes()) for s, k, r in
                    zip(sources, keys, rows)])


def delete_person(db, name):
    person = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
    if person:
        db.execute("DELETE FROM photos WHERE person = ?", person)
        db.execute("DELETE FROM people WHERE id = ?", person)


def read(db, path):
    """(meta, names, embeddings, labels, sources, keys) of the database, checked; rows
    grouped by person, people in the order they were first enrolled."""
    own = not db.in_transaction
    try:
        if own:
            db.execute("BEGIN")  # one snapshot for the three reads
        try:
            meta = {}
            for key, value in db.execute("SELECT key, value FROM meta"):
                meta[key] = _json(path, key, value)
            people = db.execute("SELECT id, name FROM people ORDER BY id").fetchall()
            rows = db.execute("SELECT person, source, key, embedding FROM photos "
                              "ORDER BY person, id").fetchall()
        finally:
            if own and db.in_transaction:
                db.execute("COMMIT")
    except sqlite3.Error as e:
        raise GalleryError(f"could not read the gallery {path} ({e}); check that the file "
                           f"may be read. If it is damaged, enroll into a new one") from None
    names = [name for _, name in people]
    label_of = {pid: i for i, (pid, _) in enumerate(people)}
    labels = np.array([label_of.get(r[0], -1) for r in rows], np.int64)
    sources = np.array([r[1] for r in rows], dtype=object)
    keys = np.array([r[2] for r in rows], dtype=object)
    embeddings = _blobs(path, [r[3] for r in rows], (meta.get("identity") or {}))
    check_contents(path, meta, names, embeddings, labels, sources, keys)
    return meta, names, embeddings, labels, sources, keys


def _json(path, field, text):
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise _damaged(path, field, f"is not JSON: {str(text)[:60]!r}") from None


def _blobs(path, blobs, identity):
    """The embedding blobs as one (rows, size) float32 matrix."""
    if not blobs:
        size = identity.get("embedding_size") if isinstance(identity, dict) else None
        return np.zeros((0, size if isinstance(size, int) else 0), np.float32)
    sizes = {len(b) if isinstance(b, bytes) else -1 for b in blobs}
    if len(sizes) != 1 or min(sizes) <= 0 or min(sizes) % 4:
        raise _damaged(path, "embeddings", f"hold blobs of {len(sizes)} different sizes "
                                           f"({sorted(sizes)[:4]} bytes)")
    return np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), -1).astype(np.float32)


def _damaged(path, field, why):
    return GalleryError(f"{path}: field '{field}' {why}; the gallery is damaged: enroll into "
                        f"a new one")


def check_contents(path, meta, names, embeddings, labels, sources, keys):
    """Raise a GalleryError naming the file and the field for anything that would make a
    search answer wrongly: bad settings, shapes, labels, duplicate names, rows that are not
    finite unit vectors, rows of another size than the model's."""
    version = meta.get("version", 1)
    if not isinstance(version, int) or version > GALLERY_VERSION:
        raise GalleryError(f"{path} was written by a newer version of this library (gallery "
                           f"version {version!r}, this one reads up to {GALLERY_VERSION})")
    _check_settings(path, meta)
    seen = set()
    for name in names:
        if name in seen:
            raise _damaged(path, "names", f"lists {name!r} twice")
        seen.add(name)
    if embeddings.ndim != 2:
        raise _damaged(path, "embeddings", f"have shape {embeddings.shape}, not (photos, size)")
    for field, values in (("labels", labels), ("sources", sources), ("keys", keys)):
        if len(values) != len(embeddings):
            raise _damaged(path, field, f"has {len(values)} entries for {len(embeddings)} "
                                        f"embeddings")
    outside = np.flatnonzero((labels < 0) | (labels >= len(names)))
    if len(outside):
        i = outside[0]
        raise _damaged(path, "labels", f"row {i} is {labels[i]}, outside 0..{len(names) - 1} "
                                       f"(the people enrolled)")
    identity = meta.get("identity") or {}
    size = identity.get("embedding_size")
    if len(embeddings) and size is not None and embeddings.shape[1] != size:
        raise _damaged(path, "embeddings", f"are {embeddings.shape[1]}-d, but the gallery's "
                                           f"model {identity.get('model')} makes {size}-d ones")
    bad = unit_row_problem(embeddings)
    if bad:
        i, why = bad
        raise _damaged(path, "embeddings", f"row {i} ({names[labels[i]]}, {sources[i]}) {why}")


def _check_settings(path, meta):
    identity = meta.get("identity")
    if identity is not None:
        missing = [k for k in IDENTITY_KEYS if k not in identity] if isinstance(
            identity, dict) else list(IDENTITY_KEYS)
        if missing:
            raise _damaged(path, "identity", f"lacks {', '.join(missing)}")
    threshold = meta.get("threshold")
    if threshold is not None and not _positive(threshold):
        raise _damaged(path, "threshold", f"is {threshold!r}, not a positive distance")
    far_table = meta.get("far_table")
    if far_table is not None:
        try:
            points = [(float(k), v) for k, v in far_table.items()]
        except (AttributeError, TypeError, ValueError):
            points = [(float("nan"), None)]
        if not all(0 < far <= 1 and _positive(d) for far, d in points):
            raise _damaged(path, "far_table", f"is {str(far_table)[:80]}, not false-accept "
                                              f"rates in (0, 1] with positive distances")


def _positive(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def unit_row_problem(embeddings):
    """(row, why) of the first row that is not a finite unit vector, or None."""
    finite = np.isfinite(embeddings).all(axis=1)
    if not finite.all():
        return int(np.argmin(finite)), "is not finite (NaN or inf)"
    norms = np.linalg.norm(embeddings, axis=1)
    off = np.flatnonzero(np.abs(norms - 1) > UNIT_TOLERANCE)
    if len(off):
        return int(off[0]), f"has length {norms[off[0]]:.4g}, not 1"
    return None


def read_npz(path):
    """(meta, names, embeddings, labels, sources, keys) of an `.npz` gallery, checked."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            names = [str(n) for n in z["names"]]
            embeddings = z["embeddings"].astype(np.float32)
            labels, sources, keys = z["labels"], z["sources"], z["keys"]
    except (OSError, ValueError, KeyError, RecursionError) as e:
        raise GalleryError(f"{path} is not a readable gallery ({type(e).__name__}: {e}); "
                           f"delete it and enroll again") from None
    if not isinstance(meta, dict):
        raise _damaged(path, "meta", f"is {str(meta)[:60]}, not a table of settings")
    if not np.issubdtype(labels.dtype, np.integer):
        raise _damaged(path, "labels", f"are {labels.dtype}, not integers")
    labels, sources, keys = labels.astype(np.int64), sources.astype(object), keys.astype(object)
    check_contents(path, meta, names, embeddings, labels, sources, keys)
    return meta, names, embeddings, labels, sources, keys


def import_npz(db, path):
    """Copy an `.npz` gallery into the (new, empty) database, inside the caller's
    transaction."""
    meta, names, embeddings, labels, sources, keys = read_npz(path)
    write_meta(db, identity=meta.get("identity"), threshold=meta.get("threshold"),
               far_table=meta.get("far_table"), imported_from=os.path.basename(path))
    for label, name in enumerate(names):
        rows = labels == label
        if rows.any():
            insert_photos(db, name, embeddings[rows], sources[rows], keys[rows])
