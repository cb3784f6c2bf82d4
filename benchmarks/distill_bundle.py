"""Pack what an accelerator run of the distillation needs into one small folder, and read it
back there (benchmarks/distill_accelerated.py). The machine that trains may have no
TensorFlow and no copy of LFW, and what travels to it is small, so:

- the teacher's weights as int8 per output channel (a quarter of float32), with the float
  values of everything that is not a kernel; `teacher_fidelity` measures what that costs;
- the training faces (LFW folds 2-10, aligned with room around the face) as WebP at the size
  where the face box is the student's input size, all in one file with an offsets table;
- fold 1's images and pairs, to score the student as it trains.

    python -m benchmarks.distill_bundle --out .bundle

Needs the aligned crops that benchmarks/distill_lfw_mobilenet.py makes (it makes them first).
"""
import argparse
import io
import json
import os
import shutil

import numpy as np

FORMAT = 1
FACE_SHARE = 0.8  # the face box is the central 80% of each crop (distill_lfw_mobilenet)


def quantize(w):
    """Symmetric int8 per output channel (the last axis); returns (int8 values, scales)."""
    w = np.asarray(w, np.float32)
    flat = w.reshape(-1, w.shape[-1])
    scale = np.abs(flat).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(flat / scale), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale.astype(np.float32)


def pack_weights(model, path):
    """Every variable of `model` in order: kernels (rank >= 2) as int8 + scales, the rest as
    float32; the variables' paths and shapes are kept so a reader can refuse a mismatch."""
    arrays, index = {}, []
    for i, v in enumerate(model.weights):
        value = np.asarray(v.numpy(), np.float32)
        if value.ndim >= 2:
            arrays[f"q{i}"], arrays[f"s{i}"] = quantize(value)
        else:
            arrays[f"f{i}"] = value
        index.append([v.path, list(value.shape)])
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), np.uint8)
    np.savez_compressed(path, **arrays)


def unpack_weights(model, path):
    """Fill `model` from a pack_weights file; refuses a file made for another network."""
    data = np.load(path)
    index = json.loads(bytes(data["index"]).decode())
    if len(index) != len(model.weights):
        raise ValueError(f"{path}: {len(index)} variables, the model has {len(model.weights)}")
    for i, (v, (name, shape)) in enumerate(zip(model.weights, index)):
        if tuple(shape) != tuple(v.shape):
            raise ValueError(f"{path}: variable {i} ({name}) is {shape}, the model's {v.path} "
                             f"is {list(v.shape)}")
        if f"q{i}" in data:
            value = data[f"q{i}"].astype(np.float32) * data[f"s{i}"]
        else:
            value = data[f"f{i}"]
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: variable {i} ({name}) holds NaN or infinity")
        v.assign(value)


def pack_images(paths, out, size, quality):
    """The images at `size` px as WebP, concatenated in `out`.bin with `out`.npy offsets."""
    from PIL import Image

    offsets, blob = [0], bytearray()
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB").resize((size, size), Image.BICUBIC)
            buf = io.BytesIO()
            im.save(buf, "WEBP", quality=quality, method=6)
        blob += buf.getvalue()
        offsets.append(len(blob))
    with open(out + ".bin", "wb") as f:
        f.write(blob)
    np.save(out + ".npy", np.asarray(offsets, np.int64))


def unpack_images(prefix):
    """uint8 (N, S, S, 3) from a pack_images pair of files."""
    from PIL import Image

    offsets = np.load(prefix + ".npy")
    with open(prefix + ".bin", "rb") as f:
        blob = f.read()
    out = None
    for i in range(len(offsets) - 1):
        with Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]])) as im:
            a = np.asarray(im.convert("RGB"))
        if out is None:
            out = np.empty((len(offsets) - 1,) + a.shape, np.uint8)
        out[i] = a
    return out


def teacher_fidelity(teacher, packed_teacher, images, size=160):
    """Cosine between the float teacher's and the int8-weight teacher's embeddings of the
    central faces of `images` (uint8 crops): (mean, min)."""
    from PIL import Image

    from utils.image import standardize

    s = images.shape[1]
    lo = int(round(s * (1 - FACE_SHARE) / 2))
    faces = np.stack([np.asarray(Image.fromarray(a[lo:s - lo, lo:s - lo]).resize(
        (size, size), Image.BICUBIC)) for a in images])
    x = standardize(faces)
    a = teacher.predict(x, verbose=0)
    b = packed_teacher.predict(x, verbose=0)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.mean()), float(cos.min())


def main(argv=None):
    from benchmarks.distill_lfw_mobilenet import SHARED, training_set
    from utils.lfw import read_pairs

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default=os.path.join(SHARED, "lfw"))
    p.add_argument("--meta-dir", default=os.path.join(SHARED, "lfw_meta"))
    p.add_argument("--aligned-dir", default=None)
    p.add_argument("--student-size", type=int, default=112,
                   help="the student's input size: the crops are stored with their face box "
                        "at this size")
    p.add_argument("--quality", type=int, default=75, help="WebP quality of the training faces")
    p.add_argument("--out", default=".bundle")
    args = p.parse_args(argv)

    from facenet import weights as registry
    from nets.facenet import facenet
    from nets.weights_io import load_weights

    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "work")
    data = training_set(args.lfw_dir, args.meta_dir, args.aligned_dir, work)
    size = int(round(args.student_size / FACE_SHARE))
    paths = [p for _, p in data["entries"]]
    pack_images(paths, os.path.join(args.out, "train"), size, args.quality)
    pairs = read_pairs(data["pairs_file"], data["image_dir"])
    fold1 = sorted({p for pair in pairs for p in (pair.path_1, pair.path_2)})
    where = {p: i for i, p in enumerate(fold1)}
    pack_images(fold1, os.path.join(args.out, "fold1"), size, 90)
    np.save(os.path.join(args.out, "fold1_pairs.npy"),
            np.asarray([(where[q.path_1], where[q.path_2], int(q.same)) for q in pairs], np.int32))

    teacher = facenet((160, 160, 3), backbone="inception_resnetv1", mode="predict")
    load_weights(teacher, registry.fetch(registry.DEFAULT_MODEL))
    teacher_file = os.path.join(args.out, "teacher_int8.npz")
    pack_weights(teacher, teacher_file)
    packed = facenet((160, 160, 3), backbone="inception_resnetv1", mode="predict")
    unpack_weights(packed, teacher_file)
    mean, worst = teacher_fidelity(teacher, packed, unpack_images(os.path.join(args.out, "fold1")))
    shutil.rmtree(work)
    info = {"format": FORMAT, "train_images": len(paths), "fold1_images": len(fold1),
            "fold1_pairs": len(pairs), "crop_size": size, "face_share": FACE_SHARE,
            "student_size": args.student_size, "webp_quality": args.quality,
            "teacher": registry.DEFAULT_MODEL, "teacher_int8_cosine_mean": round(mean, 6),
            "teacher_int8_cosine_min": round(worst, 6),
            "bytes": {f: os.path.getsize(os.path.join(args.out, f))
                      for f in sorted(os.listdir(args.out))}}
    with open(os.path.join(args.out, "bundle.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
