"""Training input from packed shards against separate image files, same run: is a packed
dataset format worth shipping?

LFW's JPEGs are packed into sharded TFRecords (one record per image: its bytes, label and path;
packing time measured from a cold page cache), then all images are read through tf.data three
ways, each with a cold page cache (dropped before the pass; needs root) and warm:

- files: one file per image, in a random order, `tf.io.read_file` in a parallel map (the
  training loader's way);
- shards, streamed: `interleave` over the shards (cycle length = shards) and a shuffle buffer;
  fast to read, but it cannot give the training loader's batches, whose images the triplet
  sampler picks in a random order;
- shards, random access: the files' random order, each record read by its offset (what a packed
  format needs to give the same batches as the files).

Each way reads the bytes only, and also decodes and letterboxes to `--size` (the training
loader's whole per-image work). The ways alternate, each is repeated `--repeats` times, the
median is reported; the load average is recorded, as other work shares the CPU.

A network disk is modelled last (warm cache, bytes and decoding, the first `--model-images`
images): a fixed delay per request (`--latency-ms`: each file, each shard open, each
random-access read), files and records read with tf.data's default parallelism and with
`--parallel-reads`.

    python -m benchmarks.packed_input --lfw-dir ../shared/data/lfw
    python -m benchmarks.packed_input --images 2000 --repeats 1      # a quick check that it runs
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks.common import machine, write_result

RECORD_HEAD, RECORD_TAIL = 12, 4  # a TFRecord: length (8), its CRC (4), data, the data's CRC (4)


def lfw_images(lfw_dir, limit, seed):
    """(paths, labels) of the JPEGs under `lfw_dir` in a seeded random order, the label being
    the folder's index; at most `limit` of them."""
    folders = sorted(d for d in os.listdir(lfw_dir) if os.path.isdir(os.path.join(lfw_dir, d)))
    paths, labels = [], []
    for label, folder in enumerate(folders):
        for name in sorted(os.listdir(os.path.join(lfw_dir, folder))):
            if name.lower().endswith(".jpg"):
                paths.append(os.path.join(lfw_dir, folder, name))
                labels.append(label)
    if not paths:
        sys.exit(f"no .jpg files in the folders of --lfw-dir {lfw_dir}; point it at LFW's "
                 f"image folder (one folder per person)")
    order = np.random.default_rng(seed).permutation(len(paths))[:limit]
    return [paths[i] for i in order], [labels[i] for i in order]


def drop_page_cache():
    """Write dirty pages, then empty the kernel's page cache, so the next read comes from disk."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
            f.write("3\n")
    except OSError as e:
        sys.exit(f"cannot drop the page cache ({e}): cold timings need root on Linux; run as "
                 f"root or pass --warm-only")


def example(data, label, path):
    import tensorflow as tf

    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
               "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def pack(paths, labels, folder, shards, seed):
    """Write the images, in a seeded order of their own, into `shards` TFRecord files in
    `folder`. Returns the shard paths and, per image in the order of `paths`, (shard, offset of
    its serialized example, its length)."""
    import tensorflow as tf

    from utils.fileio import atomic_path

    order = np.random.default_rng([seed, 1]).permutation(len(paths))
    names = [os.path.join(folder, f"part-{k:05d}-of-{shards:05d}.tfrecord")
             for k in range(shards)]
    where = [None] * len(paths)
    for k, chunk in enumerate(np.array_split(order, shards)):
        with atomic_path(names[k]) as tmp:
            offset = 0
            with tf.io.TFRecordWriter(tmp) as writer:
                for i in chunk:
                    with open(paths[i], "rb") as f:
                        record = example(f.read(), labels[i], paths[i])
                    writer.write(record)
                    where[i] = (k, offset + RECORD_HEAD, len(record))
                    offset += RECORD_HEAD + len(record) + RECORD_TAIL
    return names, where


def parse_image(record):
    import tensorflow as tf

    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "path": tf.io.FixedLenFeature([], tf.string)}
    return tf.io.parse_single_example(record, spec)["image"]


def delayed(latency_s, value):
    """`value` once a sleep of `latency_s` has passed: one request to a disk that far away."""
    import tensorflow as tf

    if not latency_s:
        return value
    done = tf.numpy_function(lambda: np.int8(time.sleep(latency_s) or 0), [], tf.int8,
                             stateful=True)
    with tf.control_dependencies([done]):
        return tf.identity(value)


class RecordReader:
    """Reads one record from the shards by its offset (os.pread frees Python's lock while it
    reads); each shard is opened once, after a request's delay."""

    def __init__(self, names, latency_s):
        self.names, self.latency_s = names, latency_s
        self.files, self.lock = {}, threading.Lock()

    def __call__(self, shard, offset, length):
        if self.latency_s:
            time.sleep(self.latency_s)  # each read is a request
        return os.pread(self.fd(int(shard)), int(length), int(offset))

    def fd(self, shard):
        with self.lock:
            if shard not in self.files:
                if self.latency_s:
                    time.sleep(self.latency_s)
                self.files[shard] = os.open(self.names[shard], os.O_RDONLY)
            return self.files[shard]

    def close(self):
        for fd in self.files.values():
            os.close(fd)
        self.files.clear()


def images_from(way, paths, names, where, shuffle_buffer, latency_s, parallel):
    """A dataset of the images' bytes (tf.string), read `way`; also returns a closer."""
    import tensorflow as tf

    if way == "files":
        def read(path):
            return tf.io.read_file(delayed(latency_s, path))

        return with_threads(tf.data.Dataset.from_tensor_slices(paths).map(read, parallel),
                            parallel), lambda: None
    if way == "shards, streamed":
        def shard(name):
            return tf.data.TFRecordDataset(delayed(latency_s, name))

        ds = tf.data.Dataset.from_tensor_slices(names).interleave(
            shard, cycle_length=len(names), block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False)
        return ds.shuffle(shuffle_buffer).map(parse_image, parallel), lambda: None
    reader = RecordReader(names, latency_s)
    table = tf.constant(np.asarray(where, dtype=np.int64))

    def read_record(row):
        record = tf.numpy_function(reader, tf.unstack(row), tf.string, stateful=True)
        return parse_image(tf.ensure_shape(record, []))

    return with_threads(tf.data.Dataset.from_tensor_slices(table).map(read_record, parallel),
                        parallel), reader.close


def with_threads(ds, parallel):
    """`ds` run on `parallel` threads of its own: tf.data's shared threads are as many as the
    cores, too few to keep many blocking reads in flight."""
    import tensorflow as tf

    if parallel == tf.data.AUTOTUNE:
        return ds
    options = tf.data.Options()
    options.threading.private_threadpool_size = parallel
    return ds.with_options(options)


def one_pass(data, decode, size, batch_size):
    """Read every image of the dataset `data()` once; seconds, images and JPEG bytes seen, load
    before and after."""
    import tensorflow as tf

    from utils.image import max_pixels
    from utils.tf_preprocessing import decode_tf, letterbox_tf

    limit = max_pixels()

    def work(jpeg):
        if decode:
            image = letterbox_tf(decode_tf(jpeg, limit), (size, size))
            # a value that needs the pixels, so that the decode is not left out of the graph
            return tf.strings.length(jpeg), tf.reduce_sum(tf.cast(image[::16, ::16], tf.int32))
        return tf.strings.length(jpeg), tf.constant(0)

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    ds, close = data()
    ds = ds.map(work, num_parallel_calls=tf.data.AUTOTUNE) if decode else ds.map(work)
    ds = ds.batch(batch_size).map(lambda n, s: (tf.size(n), tf.reduce_sum(tf.cast(n, tf.int64))))
    images = nbytes = 0
    try:
        for n, b in ds:
            images += int(n)
            nbytes += int(b)
    finally:
        close()
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "images": images, "bytes": nbytes,
            "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def summary(passes):
    seconds = statistics.median(p["seconds"] for p in passes)
    images, nbytes = passes[0]["images"], passes[0]["bytes"]
    return {"images_s": round(images / seconds, 1), "mb_s": round(nbytes / seconds / 1e6, 1),
            "median_s": round(seconds, 3), "passes": passes}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--images", type=int, default=None, help="read this many (default: all)")
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--shuffle-buffer", type=int, default=1024)
    p.add_argument("--size", type=int, default=160, help="letterbox side when decoding")
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-ms", type=float, default=5.0,
                   help="the modelled network disk's delay per request (0: no model)")
    p.add_argument("--parallel-reads", type=int, default=32,
                   help="files read at once (and tf.data threads) in the model's second "
                        "files row")
    p.add_argument("--model-images", type=int, default=3000,
                   help="images read in the network-disk model (its reads are slow)")
    p.add_argument("--shard-dir", default=None,
                   help="where to write the shards (default: a temporary folder, removed after)")
    p.add_argument("--warm-only", action="store_true", help="skip the cold-cache timings")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import tensorflow as tf

    paths, labels = lfw_images(args.lfw_dir, args.images, args.seed)
    folder = args.shard_dir or tempfile.mkdtemp(prefix="packed_input-")
    os.makedirs(folder, exist_ok=True)
    load_start = os.getloadavg()
    try:
        if not args.warm_only:
            drop_page_cache()
        start = time.perf_counter()
        names, where = pack(paths, labels, folder, args.shards, args.seed)
        os.sync()
        packing_s = time.perf_counter() - start
        shard_mb = [round(os.path.getsize(n) / 1e6, 2) for n in names]
        print(f"packed {len(paths)} images into {len(names)} shards "
              f"({min(shard_mb)}-{max(shard_mb)} MB) in {packing_s:.1f} s", flush=True)

        auto = tf.data.AUTOTUNE
        ways = ["files", "shards, streamed", "shards, random access"]
        caches = ["warm"] if args.warm_only else ["cold", "warm"]
        passes = {}
        for r in range(args.repeats):
            for decode in (False, True):
                for way in ways[r % 3:] + ways[:r % 3]:  # a different way first each repeat
                    for cache in caches:
                        if cache == "cold":
                            drop_page_cache()
                        key = f"{'decode + letterbox' if decode else 'bytes'} | {cache} | {way}"
                        run = one_pass(lambda: images_from(
                            way, paths, names, where, args.shuffle_buffer, 0, auto),
                            decode, args.size, args.batch_size)
                        passes.setdefault(key, []).append(run)
                        print(f"{key:52s} {run['images'] / run['seconds']:8.1f} img/s "
                              f"{run['bytes'] / run['seconds'] / 1e6:7.1f} MB/s  "
                              f"load {run['load_1min'][0]}", flush=True)

        latency = args.latency_ms / 1000
        few = args.model_images
        if latency and args.model_images < len(paths):  # shards holding those images alone
            model_names, model_where = pack(
                paths[:few], labels[:few], os.path.join(folder, "model"), args.shards, args.seed)
        else:
            model_names, model_where = names, where
        more = args.parallel_reads
        model = [("files, default parallel reads", "files", auto),
                 (f"files, {more} parallel reads", "files", more),
                 ("shards, streamed", "shards, streamed", auto),
                 ("shards, random access, default parallel reads", "shards, random access", auto),
                 (f"shards, random access, {more} parallel reads", "shards, random access", more)]
        for r in range(args.repeats if latency else 0):
            for decode in (False, True):
                for label, way, parallel in model[r % 5:] + model[:r % 5]:
                    key = (f"{args.latency_ms:g} ms per request | "
                           f"{'decode + letterbox' if decode else 'bytes'} | {label}")
                    run = one_pass(lambda: images_from(
                        way, paths[:few], model_names, model_where, args.shuffle_buffer, latency,
                        parallel), decode, args.size, args.batch_size)
                    passes.setdefault(key, []).append(run)
                    print(f"{key:64s} {run['images'] / run['seconds']:8.1f} img/s", flush=True)
    finally:
        if not args.shard_dir:
            shutil.rmtree(folder, ignore_errors=True)

    for group in (False, True):  # the ways, and the model's ways, each read the same images
        seen = {(p["images"], p["bytes"]) for key, runs in passes.items()
                if ("per request" in key) == group for p in runs}
        if len(seen) > 1:
            sys.exit(f"the ways read different images or bytes: {sorted(seen)}")
    megabytes = passes[f"bytes | {caches[0]} | files"][0]["bytes"] / 1e6
    rows = {key: summary(runs) for key, runs in passes.items()}
    ratios = {}
    for key in rows:
        kind, rest = key.rsplit(" | ", 1)[0], key.rsplit(" | ", 1)[1]
        base = rows.get(f"{kind} | files") or rows.get(f"{kind} | files, default parallel reads")
        if base is not None and rows[key] is not base:
            ratios[f"{kind} | {rest} / files"] = round(rows[key]["images_s"] / base["images_s"],
                                                       2)
    print("\nmedian of", args.repeats, "(images/s, MB/s):")
    for key, row in rows.items():
        print(f"  {key:64s} {row['images_s']:8.1f} {row['mb_s']:7.1f}")
    print("ratios (images/s against files read the default way):")
    for key, ratio in ratios.items():
        print(f"  {key:64s} {ratio:.2f}x")
    whole_cold = {k: v for k, v in ratios.items() if k.startswith("decode + letterbox | cold")}
    best = max(whole_cold.values(), default=None)
    decision = {"rule": "keep a packer if cold reading from shards is >= 1.3x faster than from "
                        "files in the whole-loader (decode + letterbox) case",
                "whole_loader_cold_ratios": whole_cold,
                "keep_packer": bool(best is not None and best >= 1.3)}
    print(f"decision: keep a packer: {decision['keep_packer']}")
    try:
        disk = subprocess.run(["df", "-T", args.lfw_dir], capture_output=True, text=True,
                              check=True).stdout.splitlines()[-1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        disk = "unknown"
    write_result("packed_input", {
        "machine": machine(), "settings": vars(args), "file_system": disk,
        "images": len(paths), "megabytes": round(megabytes, 1),
        "packing": {"seconds": round(packing_s, 2), "shards": len(names), "shard_mb": shard_mb},
        "load_average": {"start": [round(x, 2) for x in load_start],
                         "end": [round(x, 2) for x in os.getloadavg()]},
        "rows": rows, "ratios": ratios, "decision": decision})


if __name__ == "__main__":
    main()
