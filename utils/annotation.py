"""The annotation file `cls_train.txt`: one `<class_id>;<path>` line per image.

Class ids are the ranks of the sorted class-folder names. Paths may be relative (to the working
folder) or absolute; a path may itself contain `;` (only the first one separates the fields),
but no line break, and the file is UTF-8: a file whose name breaks either rule is left out.
"""
import logging
import os

from utils.errors import FacenetError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}


class AnnotationError(FacenetError):
    """A dataset folder or annotation file that cannot be used as it is."""


def is_image_file(name):
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_dataset(datasets_path):
    """[(class_id, path)], class names: one class per sub-folder (images in nested folders too)."""
    if not os.path.isdir(datasets_path):
        raise AnnotationError(f"dataset folder not found: {datasets_path} (put one folder of "
                              f"face images per person there)")
    classes = sorted(d for d in os.listdir(datasets_path)
                     if not d.startswith(".") and os.path.isdir(os.path.join(datasets_path, d)))
    entries = []
    for class_id, name in enumerate(classes):
        for root, dirs, files in os.walk(os.path.join(datasets_path, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            entries += [(class_id, os.path.join(root, f)) for f in sorted(files) if is_image_file(f)]
    logger.debug(f"{datasets_path}: {len(classes)} class folders, {len(entries)} images")
    return entries, classes


def unlistable(path):
    """Why `path` cannot be one line of the annotation file, or None: a line break would split
    its line, and a name that is not UTF-8 cannot be written (nor read back)."""
    if "\n" in path or "\r" in path:
        return "its name holds a line break"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    return None


def split_listable(entries):
    """(entries the annotation file can hold, [(path, why not)] for the others)."""
    kept, left_out = [], []
    for class_id, path in entries:
        why = unlistable(path)
        if why:
            left_out.append((path, why))
        else:
            kept.append((class_id, path))
    return kept, left_out


def write_annotation(entries, output, absolute=False):
    from utils.fileio import atomic_path

    lines = []
    for class_id, path in entries:
        path = os.path.abspath(path) if absolute else os.path.relpath(path)
        why = unlistable(path)
        if why:  # the reader would reject the file, or mis-split it
            raise AnnotationError(f"cannot list {path!r} in {output}: {why}; rename the file")
        lines.append(f"{class_id};{path}\n")
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines)


def read_annotation(path):
    """[(class_id, path)] from an annotation file; a malformed line names its number."""
    if not os.path.exists(path):
        raise AnnotationError(f"annotation file not found: {path} (run txt_annotation.py first)")
    from utils.fileio import read_text_lines

    entries, first_line = [], {}
    for number, line in enumerate(read_text_lines(path, AnnotationError, "an annotation file "
                                                  "of '<class_id>;<image path>' lines"), start=1):
        if not line.strip():
            continue
        label, sep, image = line.partition(";")
        if not sep or not label.strip().isdigit() or not image:
            raise AnnotationError(f"{path}:{number}: expected '<class_id>;<image path>', "
                                  f"got {line!r}")
        entries.append((int(label), image))
        first_line.setdefault(int(label), number)
    if not entries:
        raise AnnotationError(f"{path} lists no images")
    check_class_ids(path, first_line)
    return entries


def check_class_ids(path, first_line):
    """Class ids are folder ranks, 0..C-1: the classifier gets max id + 1 outputs, so one
    mistyped id (99999999) would build a 100-million-class layer. A few unused ids are fine
    (class folders left empty); more unused ids than used ones is an error naming the line.
    `first_line` maps each id to the first line that uses it."""
    ids = sorted(first_line)
    limit = 2 * len(ids)
    if ids[-1] < limit:
        return
    bad = next(i for i in ids if i >= limit)
    raise AnnotationError(f"{path}:{first_line[bad]}: class id {bad} is far beyond the "
                          f"{len(ids)} classes of the file (ids are 0..C-1, one per class "
                          f"folder); correct the id, or run txt_annotation.py again")


def find_unreadable(entries, workers=2, progress=True):
    """[(path, reason)] of the entries whose image does not decode (checked in threads)."""
    import concurrent.futures

    from tqdm import tqdm

    from utils.errors import ImageLoadError
    from utils.image import load_image

    def check(path):
        try:
            load_image(path)
            return None
        except ImageLoadError as e:
            return path, str(e)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(check, [p for _, p in entries]), total=len(entries),
                            unit="img", desc="Checking images", disable=not progress))
    return [r for r in results if r is not None]
