"""Training input at CASIA-WebFace size, the loader before issue 17 against today's, same run:
a synthetic annotation of 490,000 lines over 10,575 classes (LFW's files, over and over), then

- `train.py`'s wall time from its start to the end of its first step, and its peak resident
  memory (each in a fresh process, stopped after that step);
- the loader's images/s (batches of `--batch-size` at `--input-size`) on 1 and on 2 threads.

The old loader is `utils/dataloader.py` as it was at commit 3310fb2 (read with `git show`, so
this needs the git history; `--skip-old` measures today's alone).

    python -m benchmarks.train_scale --lfw-dir ../shared/data/lfw
    python -m benchmarks.train_scale --lines 20000 --epochs 2     # a quick check that it runs
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.common import lfw_jpegs, machine, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD_COMMIT = "3310fb2"
FIRST_STEP = "first step done"


def old_dataloader(folder):
    """The module utils/dataloader.py of OLD_COMMIT, loaded from a copy in `folder`."""
    try:
        source = subprocess.run(["git", "show", f"{OLD_COMMIT}:utils/dataloader.py"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"cannot read utils/dataloader.py of commit {OLD_COMMIT} with git ({e}); run "
                 f"this in a git checkout with its history, or pass --skip-old")
    path = os.path.join(folder, "old_dataloader.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("old_dataloader", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where autograph looks for the functions' source
    spec.loader.exec_module(module)
    return module


def write_annotation(path, lfw_dir, lines, classes):
    """`lines` lines `class;file` over `classes` classes, LFW's images dealt out in turn."""
    files = lfw_jpegs(lfw_dir)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(f"{i % classes};{os.path.abspath(files[i % len(files)])}\n")
    return len(files)


def child(args):
    """train.py in this process, with the chosen loader; exits after the first step."""
    import facenet.training.data

    build = (old_dataloader(args.tmp) if args.child == "old"
             else facenet.training.data).triplet_dataset

    def triplet_dataset(*a, **k):
        import keras  # loaded by now: stop the process once the first step is done

        def on_train_batch_end(self, batch, logs=None):
            print(FIRST_STEP, flush=True)
            os._exit(0)

        keras.callbacks.CallbackList.on_train_batch_end = on_train_batch_end
        return build(*a, **k)

    facenet.training.data.triplet_dataset = triplet_dataset
    import train

    train.main(["--annotation-path", args.annotation, "--epochs", str(args.epochs),
                "--batch-size", str(args.batch_size), "--input-shape", str(args.input_size),
                str(args.input_size), "3", "--save-dir", os.path.join(args.tmp, "logs"),
                "--no-lfw-eval", "--no-progress"])
    sys.exit("training ended before its first step was reported")


def time_to_first_step(args, which):
    """train.py's seconds from its start to its first step done, and its peak RSS in MiB, in a
    fresh process with the `which` loader (None after --timeout seconds)."""
    cmd = [sys.executable, "-m", "benchmarks.train_scale", "--child", which, "--tmp", args.tmp,
           "--annotation", args.annotation, "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--input-size", str(args.input_size)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    timer = threading.Timer(args.timeout, proc.kill)
    timer.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak memory
    seconds = time.perf_counter() - start
    timer.cancel()
    rss = round(usage.ru_maxrss / 1024)
    if FIRST_STEP in out:
        return {"first_step_s": round(seconds, 1), "peak_rss_mib": rss}
    if seconds >= args.timeout:
        return {"first_step_s": None, "peak_rss_mib": rss,
                "note": f"no first step within --timeout {args.timeout} s"}
    sys.exit(f"train.py with the {which} loader failed (status {status}):\n{out[-3000:]}")


def loader_rate(module, paths, labels, args, threads):
    """`module`'s triplet_dataset in images/s, its tf.data work confined to `threads` threads,
    and the cores the process kept busy meanwhile (CPU seconds per second): --rate-batches
    batches timed end to end, after --drain-batches more that empty the buffers filled while
    the pipeline started (a median of single fetches would count them)."""
    import tensorflow as tf

    size, bs = args.input_size, args.batch_size
    steps = args.drain_batches + args.rate_batches + 1
    ds = module.triplet_dataset(paths, labels, args.classes, (size, size, 3), bs, steps, 1, 0, 0,
                                True, "scale01")
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    batches = iter(ds.with_options(options))
    for _ in range(1 + args.drain_batches):  # start-up: the epoch drawn, functions traced
        next(batches)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.rate_batches):
        next(batches)
    wall = time.perf_counter() - start
    return round(bs * args.rate_batches / wall, 1), round((time.process_time() - cpu) / wall, 2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--lines", type=int, default=490000)
    p.add_argument("--classes", type=int, default=10575)
    p.add_argument("--epochs", type=int, default=100, help="train.py --epochs")
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--input-size", type=int, default=160)
    p.add_argument("--rate-batches", type=int, default=30, help="batches per loader timing")
    p.add_argument("--drain-batches", type=int, default=10,
                   help="batches fetched untimed before each loader timing")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--timeout", type=float, default=1800,
                   help="seconds before a train.py that has not made its first step is stopped")
    p.add_argument("--skip-old", action="store_true", help="today's loader alone")
    p.add_argument("--name", default="train_scale", help="result file name")
    p.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--annotation", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)

    with tempfile.TemporaryDirectory() as tmp:
        args.tmp, args.annotation = tmp, os.path.join(tmp, "cls_train.txt")
        files = write_annotation(args.annotation, args.lfw_dir, args.lines, args.classes)
        print(f"{args.lines} lines of {args.classes} classes over {files} LFW files; "
              f"train.py --epochs {args.epochs} --batch-size {args.batch_size}", flush=True)
        import tensorflow as tf

        # some ops (the antialiased resize) split their work over TensorFlow's own pool, which
        # tf.data's thread limit does not bound: one thread each, so that "1 thread" is one
        tf.config.threading.set_intra_op_parallelism_threads(1)
        import facenet.training.data
        from utils.annotation import read_annotation

        loaders = {"new": facenet.training.data}
        if not args.skip_old:
            loaders["old"] = old_dataloader(tmp)
        entries = read_annotation(args.annotation)
        paths, labels = [p for _, p in entries], [c for c, _ in entries]
        rows = {}
        for which, module in loaders.items():
            row = rows[which] = time_to_first_step(args, which)
            for n in args.threads:
                rate, cores = loader_rate(module, paths, labels, args, n)
                row[f"images_per_s_{n}_threads"], row[f"cores_busy_{n}_threads"] = rate, cores
            print(f"{which}: {json.dumps(row)}", flush=True)
    write_result(args.name, {"machine": machine(), "settings": {
        k: v for k, v in vars(args).items() if k not in ("child", "tmp", "annotation")},
        "old_loader": f"utils/dataloader.py at {OLD_COMMIT}", "rows": rows})


if __name__ == "__main__":
    main()
