"""Put people into a gallery and ask it who is in a photo, through a `Facenet` predictor."""
import logging
import os

import numpy as np

from facenet.align_cache import image_key
from utils.errors import ImageLoadError

logger = logging.getLogger(__name__)


def _embed_skipping_bad(predictor, paths):
    """(embeddings, kept paths, [(path, why)] skipped) - unreadable photos and, with
    alignment on, photos without a face are skipped, not enrolled."""
    records, parts = [], []
    try:
        parts = list(predictor.iter_embeddings(paths, records=records))
        kept_paths = list(paths)
    except ImageLoadError:  # find the bad ones one by one; the rest still go in
        records, parts, kept_paths = [], [], []
        for p in paths:
            recs = []
            try:
                parts += list(predictor.iter_embeddings([p], records=recs))
            except ImageLoadError:
                continue
            records += recs
            kept_paths.append(p)
    skipped = [(p, "unreadable") for p in paths if p not in set(kept_paths)]
    if not parts:
        return np.zeros((0, predictor.model.output.shape[-1]), np.float32), [], skipped
    emb = np.concatenate(parts)
    keep = np.array([r.how != "fallback" for r in records], bool)
    skipped += [(p, "no face found") for p, k in zip(kept_paths, keep) if not k]
    return emb[keep], [p for p, k in zip(kept_paths, keep) if k], skipped


def enroll_images(gallery, predictor, name, paths):
    """Add a person's photos (files) to the gallery, committed together; photos already
    enrolled for them are not embedded again. Returns (added, already there, [(path, why)
    skipped]); a photo another process enrolled meanwhile counts as already there. The name
    is cleaned first (facenet.gallery.clean_name)."""
    from facenet.gallery import clean_name

    name = clean_name(name)
    gallery.check_model(predictor)
    keys = {p: image_key(p) for p in paths if os.path.isfile(p)}
    missing = [(p, "not a file") for p in paths if p not in keys]
    new = [p for p in keys if not gallery.has_photo(name, keys[p])]
    new = list(dict.fromkeys(new))
    emb, kept, skipped = _embed_skipping_bad(predictor, new) if new else (None, [], [])
    added = gallery.add(name, emb, kept, [keys[p] for p in kept]) if kept else 0
    for p, why in missing + skipped:
        logger.warning(f"skipped {p}: {why}")
    return added, len(keys) - len(new) + len(kept) - added, missing + skipped


def enroll_folder(gallery, predictor, people_dir, progress=False):
    """Enroll people_dir/<name>/** photos, one person per transaction: an enroll that is
    stopped keeps every person it finished. `progress`: a bar on stderr (the command's; the
    library prints nothing by default)."""
    from tqdm import tqdm

    from utils.annotation import scan_dataset

    from facenet.gallery import GalleryError, clean_name

    entries, names = scan_dataset(people_dir)
    by_person, folder_of = {}, {}
    for name in names:  # every clash is said before anyone is enrolled
        clean = clean_name(name)
        other = folder_of.get(clean.casefold())
        if other is not None:
            raise GalleryError(f"the folders {other!r} and {name!r} of {people_dir} name the "
                               f"same person (names are compared without case, surrounding "
                               f"spaces or Unicode form): merge them into one folder")
        folder_of[clean.casefold()] = name
    for label, path in entries:
        by_person.setdefault(clean_name(names[label]), []).append(path)
    totals = {"people": 0, "added": 0, "already": 0, "skipped": 0}
    for name in tqdm(sorted(by_person), desc="Enrolling", unit="person", disable=not progress):
        added, already, skipped = enroll_images(gallery, predictor, name, by_person[name])
        totals["people"] += 1
        totals["added"] += added
        totals["already"] += already
        totals["skipped"] += len(skipped)
    empty = [n for n in names if clean_name(n) not in by_person]
    if empty:
        logger.warning(f"{len(empty)} folder(s) without photos: {', '.join(empty[:5])}")
    return totals


def identify_image(gallery, predictor, image, threshold=None, top_k=5, all_faces=False,
                   match="nearest", target_far=None):
    """[(face record, Identification)] for the face of a photo (or every face of it); an
    empty list when alignment is on and no face is found: the whole-image fallback serves
    verification of crops, but a photo without a face is nobody."""
    gallery.check_model(predictor)
    far = {} if target_far is None else {"target_far": target_far}
    if all_faces:
        faces, emb = predictor.faces(image)
        if not faces:
            logger.warning(f"no face found in {image}")
        return list(zip(faces, gallery.identify_embeddings(emb, threshold, top_k, match,
                                                           **far)))
    records = []
    emb = np.concatenate(list(predictor.iter_embeddings([image], records=records)))
    if records and records[0].how == "fallback":
        logger.warning(f"no face found in {image}")
        return []
    return list(zip(records, gallery.identify_embeddings(emb, threshold, top_k, match, **far)))
