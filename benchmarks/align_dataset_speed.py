"""Time `python -m facenet.align_dataset` on N LFW photos, with 1 and 2 worker processes.

The photos are linked (not copied) into a temporary RAW_DIR/<person>/ layout.

    python -m benchmarks.align_dataset_speed --lfw-dir ../shared/data/lfw --images 1000
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def link_photos(lfw_dir, raw, count):
    people = sorted(d for d in os.listdir(lfw_dir) if os.path.isdir(os.path.join(lfw_dir, d)))
    n = 0
    for name in people:
        for f in sorted(f for f in os.listdir(os.path.join(lfw_dir, name))
                        if f.endswith(".jpg")):
            os.makedirs(os.path.join(raw, name), exist_ok=True)
            os.symlink(os.path.abspath(os.path.join(lfw_dir, name, f)),
                       os.path.join(raw, name, f))
            n += 1
            if n == count:
                return n
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--workers", default="2,1")
    args = p.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw")
        n = link_photos(args.lfw_dir, raw, args.images)
        for workers in (int(w) for w in args.workers.split(",")):
            out = os.path.join(tmp, f"out{workers}")
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "facenet.align_dataset", raw, out,
                                "--workers", str(workers), "--no-progress"], cwd=ROOT,
                               capture_output=True, text=True)
            seconds = time.perf_counter() - t
            if r.returncode:
                sys.exit(r.stderr[-2000:])
            summary = [line for line in r.stdout.splitlines() if line.startswith("Aligned")]
            rows[f"{workers} worker(s)"] = {"seconds_wall": round(seconds, 1),
                                            "images_per_s": round(n / seconds, 1),
                                            "summary": summary[0] if summary else ""}
            print(f"{workers} worker(s): {seconds:.1f} s for {n} photos from the command's start "
                  f"({n / seconds:.1f} photos/s): {summary[0] if summary else ''}", flush=True)
    write_result("align_dataset_speed", {"machine": machine(), "images": n, "rows": rows})


if __name__ == "__main__":
    main()
