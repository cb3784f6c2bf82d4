"""Start-up time of `predict.py A B` (process start to answer) and peak resident memory of
`eval_lfw.py` on all of LFW, each run as a user runs it, in a fresh process.

    python -m benchmarks.startup_memory --lfw-dir ../shared/data/lfw \
        --pairs ../shared/data/lfw_meta/pairs.txt [--skip-eval]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from benchmarks.common import machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args):
    """(wall seconds, peak RSS in MiB, stdout) of `python args...` in a fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if status:
        sys.exit(f"{args} failed:\n{out[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-eval", action="store_true", help="only the start-up figures")
    args = p.parse_args(argv)
    a = os.path.join(args.lfw_dir, "Colin_Powell", "Colin_Powell_0001.jpg")
    b = os.path.join(args.lfw_dir, "Colin_Powell", "Colin_Powell_0002.jpg")
    rows = {}
    for name, extra in (("predict.py A B (aligned, default)", []),
                        ("predict.py A B --no-align", ["--no-align"])):
        runs = [run(["predict.py", a, b, "--out", "", *extra]) for _ in range(args.repeats)]
        rows[name] = {"seconds_median": round(statistics.median(r[0] for r in runs), 2),
                      "seconds": [round(r[0], 2) for r in runs],
                      "peak_rss_mib": round(max(r[1] for r in runs))}
        print(f"{name:36s} {rows[name]['seconds_median']:6.2f} s  "
              f"peak {rows[name]['peak_rss_mib']} MiB", flush=True)
    if not args.skip_eval:
        for name, extra in (("eval_lfw.py, centre crop", []),
                            ("eval_lfw.py --align (crops cached)", ["--align"])):
            seconds, rss, _ = run(["eval_lfw.py", "--lfw-dir", args.lfw_dir, "--pairs",
                                   args.pairs, "--no-progress", "--report", "", "--roc", "",
                                   *extra])
            rows[name] = {"seconds": round(seconds, 1), "peak_rss_mib": round(rss)}
            print(f"{name:36s} {seconds:6.1f} s  peak {rss:.0f} MiB", flush=True)
    write_result("startup_memory", {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
