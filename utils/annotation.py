"""The annotation file `cls_train.txt`: one `<class_id>;<path>` line per image.

Class ids are the ranks of the sorted class-folder names. Paths may be relative (to the working
folder) or absolute; a path may itself contain `;` (only the first one separates the fields).
"""
import os

from utils.errors import FacenetError

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
    return entries, classes


def write_annotation(entries, output, absolute=False):
    from utils.fileio import atomic_path

    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for class_id, path in entries:
            path = os.path.abspath(path) if absolute else os.path.relpath(path)
            f.write(f"{class_id};{path}\n")


def read_annotation(path):
    """[(class_id, path)] from an annotation file; a malformed line names its number."""
    if not os.path.exists(path):
        raise AnnotationError(f"annotation file not found: {path} (run txt_annotation.py first)")
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, sep, image = line.partition(";")
            if not sep or not label.strip().isdigit() or not image:
                raise AnnotationError(f"{path}:{number}: expected '<class_id>;<image path>', "
                                      f"got {line!r}")
            entries.append((int(label), image))
    if not entries:
        raise AnnotationError(f"{path} lists no images")
    return entries


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
