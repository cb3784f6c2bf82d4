"""Write `cls_train.txt` from a dataset folder with one sub-folder of face images per person.

    python txt_annotation.py --datasets-path dataset --output cls_train.txt
"""
import argparse
import collections
import sys

from utils.annotation import AnnotationError, scan_dataset, write_annotation


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets-path", default="dataset",
                   help="folder with one sub-folder per person (default: %(default)s)")
    p.add_argument("--output", default="cls_train.txt", help="annotation file (default: %(default)s)")
    p.add_argument("--absolute", action="store_true",
                   help="write absolute paths (default: relative to the working folder)")
    args = p.parse_args(argv)
    try:
        entries, classes = scan_dataset(args.datasets_path)
    except AnnotationError as e:
        sys.exit(f"error: {e}")
    counts = collections.Counter(label for label, _ in entries)
    for class_id, name in enumerate(classes):
        if counts[class_id] < 2:
            print(f"warning: class {name!r} has {counts[class_id]} image(s); it needs 2 to give "
                  f"an anchor and a positive")
    if not entries:
        sys.exit(f"error: no images found under {args.datasets_path}")
    write_annotation(entries, args.output, args.absolute)
    print(f"{len(classes)} classes, {len(entries)} images -> {args.output}")


if __name__ == "__main__":
    main()
