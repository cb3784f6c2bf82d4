"""Write `cls_train.txt` from a dataset folder with one sub-folder of face images per person.

    python txt_annotation.py --datasets-path dataset --output cls_train.txt
"""
import argparse
import collections
import logging
import sys

from facenet.cli import add_logging_options, configure_logging
from utils.annotation import (AnnotationError, find_unreadable, scan_dataset, split_listable,
                              write_annotation)
from utils.errors import cli_errors
from utils.fileio import check_output_file

logger = logging.getLogger(__name__)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets-path", default="dataset",
                   help="folder with one sub-folder per person (default: %(default)s)")
    p.add_argument("--output", default="cls_train.txt", help="annotation file (default: %(default)s)")
    p.add_argument("--absolute", action="store_true",
                   help="write absolute paths (default: relative to the working folder)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="do not decode each image to leave out unreadable ones (faster)")
    add_logging_options(p)
    args = p.parse_args(argv)
    configure_logging(args)
    with cli_errors():
        annotate(args)


def annotate(args):
    check_output_file(args.output, "--output")
    entries, classes = scan_dataset(args.datasets_path)
    entries, unlisted = split_listable(entries)
    for path, why in unlisted:
        logger.warning(f"left out {path!r}: {why} (rename it to list it)")
    if args.check and entries:
        bad = find_unreadable(entries, progress=sys.stderr.isatty())
        for path, reason in bad:
            logger.warning(f"left out an unreadable image: {reason}")
        bad_paths = {path for path, _ in bad}
        entries = [(c, path) for c, path in entries if path not in bad_paths]
    counts = collections.Counter(label for label, _ in entries)
    for class_id, name in enumerate(classes):
        if counts[class_id] < 2:
            logger.warning(f"class {name!r} has {counts[class_id]} image(s); it needs 2 to "
                           f"give an anchor and a positive")
    if not entries:
        raise AnnotationError(f"no images found under {args.datasets_path}")
    write_annotation(entries, args.output, args.absolute)
    print(f"{len(classes)} classes, {len(entries)} images -> {args.output}")

if __name__ == "__main__":
    main()
