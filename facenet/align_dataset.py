"""Turn a folder of raw photos per person into aligned face crops, ready for txt_annotation.py.

    python -m facenet.align_dataset RAW_DIR OUT_DIR [--size 160] [--workers 2]

RAW_DIR/<person>/**/<photo> becomes OUT_DIR/<person>/**/<photo stem>.png, the largest face
aligned. Photos already aligned are not redone (a stopped run resumes); unreadable photos and
photos without a face are skipped and listed at the end and in OUT_DIR/align_report.json.
The crop settings are kept in OUT_DIR/align_settings.json: resuming with other ones is refused,
as it would mix two kinds of crops. OUT_DIR may not lie inside RAW_DIR.
"""
import argparse
import json
import logging
import os
import re
import time

from facenet.align import CHOICES, DEFAULT_MARGIN, METHODS
from facenet.cli import add_logging_options, configure_logging
from utils.errors import FacenetError, cli_errors

CROP_FORMATS = ("png", "jpg")  # png: lossless

CHUNK = 16  # photos per detector call (photos of one size run as one MTCNN batch)
_ALIGNER = None  # one per worker process
SETTINGS_FILE = "align_settings.json"  # what the crops of OUT_DIR were made with
REPORT_FILE = "align_report.json"
# Temporaries of a killed run: atomic_path's hidden .tmp-* files and <crop>.tmp<pid>.<ext> ones.
_TEMPORARY = re.compile(r"^\.tmp-|\.(png|jpg)\.tmp\d+\.(png|jpg)$")

logger = logging.getLogger(__name__)


def crop_settings(size, margin, method, choice, min_face_size, ext):
    """Everything that decides what a crop looks like (and so must not change on a resume)."""
    return {"size": [size, size], "margin": margin, "method": method, "choice": choice,
            "min_face_size": min_face_size, "format": ext}


def check_folders(raw_dir, out_dir):
    from utils.annotation import AnnotationError

    raw, out = os.path.realpath(raw_dir), os.path.realpath(out_dir)
    if raw == out:
        raise AnnotationError("OUT_DIR must differ from RAW_DIR (the crops would replace "
                              "the photos)")
    if os.path.commonpath([raw, out]) == raw:
        raise AnnotationError(f"OUT_DIR {out_dir} is inside RAW_DIR {raw_dir}: each rerun would "
                              f"align the crops again as photos; choose an OUT_DIR outside it")


def recorded_settings(out_dir):
    """The settings OUT_DIR's crops were made with (its settings file, else its last report's),
    or None for a new folder."""
    for name in (SETTINGS_FILE, REPORT_FILE):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                return data if name == SETTINGS_FILE else data["settings"]
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
                raise FacenetError(f"{path} is unreadable ({e}); delete it only if every crop "
                                   f"of {out_dir} was made with the settings given now") from None
    return None


def check_settings(out_dir, settings):
    """Resuming with other settings would mix two kinds of crops in one dataset: refuse."""
    recorded = recorded_settings(out_dir)
    if recorded is None:
        return
    changed = [k for k in settings if k in recorded and recorded[k] != settings[k]]
    if changed:
        def shown(key, value):
            return f"--{key.replace('_', '-')} {value[0] if key == 'size' else value}"

        raise FacenetError(f"{out_dir} holds crops made with "
                           f"{', '.join(shown(k, recorded[k]) for k in changed)}, not "
                           f"{', '.join(shown(k, settings[k]) for k in changed)}: give those "
                           f"settings to resume, or choose a new OUT_DIR")


def remove_temporaries(out_dir):
    """Delete the half-written files a killed run left (they are never crops)."""
    for root, _, files in os.walk(out_dir):
        for name in files:
            if _TEMPORARY.search(name):
                os.remove(os.path.join(root, name))


def plan(raw_dir, out_dir, settings):
    """[(source, destination)] for every image under RAW_DIR's class folders not aligned yet,
    and how many are done already; refuses an OUT_DIR whose crops the settings would not fit."""
    from utils.annotation import scan_dataset

    check_folders(raw_dir, out_dir)
    check_settings(out_dir, settings)
    remove_temporaries(out_dir)
    entries, _ = scan_dataset(raw_dir)
    jobs, done = [], 0
    for _, src in entries:
        rel = os.path.relpath(src, raw_dir)
        dst = os.path.join(out_dir, os.path.splitext(rel)[0] + "." + settings["format"])
        if os.path.exists(dst):
            done += 1
        else:
            jobs.append((src, dst))
    return jobs, done


def save_crop(crop, dst):
    """Write one crop whole or not at all; a full disk stops the run with one line."""
    from PIL import Image

    from utils.fileio import atomic_path

    try:
        with atomic_path(dst) as tmp:
            Image.fromarray(crop).save(tmp)
    except OSError as e:
        raise FacenetError(f"cannot write {dst}: {e.strerror or e}; free some space (or fix the "
                           f"folder) and run again to go on from there") from None


def _init_worker(settings, threads):
    global _ALIGNER
    from utils.quiet import quiet_like_parent

    quiet_like_parent()  # a spawned process: TensorFlow's start-up lines once per worker else
    from facenet.align import FaceAligner, FaceDetector

    detector = FaceDetector(settings["min_face_size"], threads=threads)
    if threads and detector.engine_used() == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _ALIGNER = FaceAligner(tuple(settings["size"]), settings["margin"], settings["method"],
                           settings["choice"], detector)


def align_chunk(jobs):
    """Align one chunk of (source, destination); returns [(source, status, message)]."""
    from facenet.align import choose_face
    from utils.errors import ImageLoadError
    from utils.image import load_image

    results, images, loaded = [], [], []
    for src, dst in jobs:
        try:
            images.append(load_image(src))
            loaded.append((src, dst))
        except ImageLoadError as e:
            results.append((src, "unreadable", str(e)))
    detections = _ALIGNER.detector.detect_many(images) if images else []
    for (src, dst), image, faces in zip(loaded, images, detections):
        face = choose_face(faces, image.size, _ALIGNER.choice)
        if face is None:
            results.append((src, "no_face", "no face found"))
            continue
        save_crop(_ALIGNER.align_detected(image, face).image, dst)
        results.append((src, "aligned", f"{len(faces)} face(s)"))
    return results


def align_dataset(raw_dir, out_dir, size=160, margin=DEFAULT_MARGIN, method="similarity",
                  choice="largest", min_face_size=20, workers=2, ext="png", progress=True):
    """Align every photo of RAW_DIR into OUT_DIR; returns the report (also saved as JSON)."""
    from tqdm import tqdm

    from utils.fileio import write_json_atomic

    settings = crop_settings(size, margin, method, choice, min_face_size, ext)
    jobs, done = plan(raw_dir, out_dir, settings)
    write_json_atomic(os.path.join(out_dir, SETTINGS_FILE), settings)
    logger.debug(f"crop settings: {settings}")
    logger.info(f"{len(jobs) + done} photos under {raw_dir}: {done} aligned already, "
                f"{len(jobs)} to do, {workers} worker(s).")
    start = time.perf_counter()
    per_chunk = max(1, min(CHUNK, -(-len(jobs) // max(1, workers))))  # every worker gets work
    chunks = [jobs[i:i + per_chunk] for i in range(0, len(jobs), per_chunk)]
    counts = {"aligned": 0, "no_face": 0, "unreadable": 0}
    skipped = []
    bar = tqdm(total=len(jobs), unit="img", desc="Aligning", disable=not progress)

    def take(results):
        for src, status, message in results:
            counts[status] += 1
            if status != "aligned":
                skipped.append({"file": src, "why": message})
        bar.update(len(results))

    if workers <= 1 or len(chunks) <= 1:
        _init_worker(settings, 0)
        for chunk in chunks:
            take(align_chunk(chunk))
    else:
        import concurrent.futures
        import multiprocessing

        # Processes, not threads: MTCNN's small convolutions leave cores idle within one
        # process. "spawn": TensorFlow must not be forked once imported.
        ctx = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 2) // workers)
        with concurrent.futures.ProcessPoolExecutor(workers, ctx, _init_worker,
                                                    (settings, threads)) as pool:
            try:
                for results in pool.map(align_chunk, chunks):
                    take(results)
            except BaseException:  # a full disk, ^C: stop now, not after every chunk failed
                pool.shutdown(cancel_futures=True)
                raise
    bar.close()
    seconds = time.perf_counter() - start
    report = {"raw_dir": raw_dir, "out_dir": out_dir, "settings": settings,
              "already_done": done, **counts, "seconds": round(seconds, 1), "skipped": skipped}
    write_json_atomic(os.path.join(out_dir, REPORT_FILE), report)
    logger.info(f"Aligned {counts['aligned']} in {seconds:.1f} s; {done} were done already; "
                f"skipped {counts['no_face']} without a face and {counts['unreadable']} "
                f"unreadable.")
    for s in skipped[:20]:
        logger.warning(f"skipped {s['file']}: {s['why']}")
    if len(skipped) > 20:
        logger.warning(f"... and {len(skipped) - 20} more skipped (see "
                       f"{out_dir}/align_report.json)")
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw_dir", help="one folder of photos per person")
    p.add_argument("out_dir", help="where the aligned crops go (same folder layout)")
    p.add_argument("--size", type=int, default=160, help="crop side in pixels (default: 160)")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="extra border as a fraction of the side (default: %(default)s)")
    p.add_argument("--method", default="similarity", choices=METHODS)
    p.add_argument("--choice", default="largest", choices=CHOICES,
                   help="which face of several (default: %(default)s)")
    p.add_argument("--min-face-size", type=int, default=20,
                   help="smallest face to look for, in pixels (default: 20)")
    p.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    p.add_argument("--format", default="png", choices=CROP_FORMATS,
                   help="crop file format (default: png, lossless)")
    p.add_argument("--no-progress", action="store_true")
    add_logging_options(p)
    args = p.parse_args(argv)
    if args.size < 32:
        p.error(f"--size must be at least 32, got {args.size}")
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():
        align_dataset(args.raw_dir, args.out_dir, args.size, args.margin, args.method,
                      args.choice, args.min_face_size, args.workers, args.format,
                      progress=not args.no_progress)


if __name__ == "__main__":
    main()
