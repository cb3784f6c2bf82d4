"""Distil Inception-ResNet-V1 into the MobileNet on an accelerator, for a fixed wall-clock
budget: Keras 3 on JAX, no TensorFlow. The CPU recipe (distill_lfw_mobilenet.py) caches the
teacher's targets for a few views because the teacher costs more than the student's step
there; on an accelerator the teacher embeds every augmented view as it is drawn, so no view
repeats. Teacher and student see the same view (the student at its size, the teacher at 160),
a share of views blends two faces (the teacher embeds the blend). The learning rate warms up,
then follows a cosine over the budget's time, so the run ends decayed however fast the machine.

    python -m benchmarks.distill_bundle --out .bundle          # where LFW is
    KERAS_BACKEND=jax python -m benchmarks.distill_accelerated --bundle .bundle \
        --init-weights model_data/facenet_mobilenet.weights.h5 --budget 420 --out OUT

Fold 1 (people never trained on) is scored on the bundle's central faces every --eval-every
seconds; OUT gets last.weights.h5, best.weights.h5 and distill_accelerated.json (the curve).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from benchmarks.distill_bundle import FACE_SHARE, FORMAT, unpack_images, unpack_weights

START = time.perf_counter()

GREY = (0.299, 0.587, 0.114)


def log(**fields):
    fields["t"] = round(time.perf_counter() - START, 1)
    print(json.dumps(fields), flush=True)


def draw_params(jax, key, n, mix):
    """Per-view geometry and colour, as facenet/training/augment.py's defaults draw them
    (blur and erasing left out)."""
    k = jax.random.split(key, 11)
    u = lambda i, lo, hi: jax.random.uniform(k[i], (n,), minval=lo, maxval=hi)  # noqa: E731
    return {"scale": u(0, 0.8, 1.05), "angle": u(1, -10.0, 10.0) * (math.pi / 180),
            "dx": u(2, -0.05, 0.05), "dy": u(3, -0.05, 0.05),
            "flip": jax.random.bernoulli(k[4], 0.5, (n,)),
            "bright": u(5, 0.7, 1.3), "contrast": u(6, 0.7, 1.3), "sat": u(7, 0.7, 1.3),
            "grey": jax.random.bernoulli(k[8], 0.1, (n,)),
            "mix": jax.random.bernoulli(k[9], mix, (n,)), "share": u(10, 0.6, 0.9)}


def render(jax, src, p, size):
    """Views of `size` px from uint8 crops `src` (B, S, S, 3) whose central FACE_SHARE is the
    face box: scaled, rotated, shifted, mirrored (bilinear), then brightness, saturation or
    grey, contrast; returns float32 pixels in 0..255."""
    jnp = jax.numpy
    b, s = src.shape[0], src.shape[1]
    side = FACE_SHARE * s
    g = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size - 0.5
    u, v = jnp.meshgrid(g, g)  # u along x, v along y
    ext = (side * p["scale"])[:, None, None]
    ux = jnp.where(p["flip"][:, None, None], -u, u) * ext
    vy = v * ext
    cos, sin = jnp.cos(p["angle"])[:, None, None], jnp.sin(p["angle"])[:, None, None]
    x = cos * ux - sin * vy + (s / 2 + p["dx"] * side)[:, None, None] - 0.5
    y = sin * ux + cos * vy + (s / 2 + p["dy"] * side)[:, None, None] - 0.5
    x0, y0 = jnp.floor(x), jnp.floor(y)
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    bi = jnp.arange(b)[:, None, None]

    def at(yy, xx):
        yy = jnp.clip(yy, 0, s - 1).astype(jnp.int32)
        xx = jnp.clip(xx, 0, s - 1).astype(jnp.int32)
        return src[bi, yy, xx].astype(jnp.float32)

    out = ((at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx) * (1 - wy)
           + (at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx) * wy)
    out = out * p["bright"][:, None, None, None]
    grey = (out @ jnp.asarray(GREY, jnp.float32))[..., None]
    coloured = grey + p["sat"][:, None, None, None] * (out - grey)
    out = jnp.where(p["grey"][:, None, None, None], jnp.broadcast_to(grey, out.shape), coloured)
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = mean + p["contrast"][:, None, None, None] * (out - mean)
    return jnp.clip(out, 0, 255)


def blend(jax, views, p):
    """A share of the views mixed with the next view of the batch (mixup)."""
    jnp = jax.numpy
    w = jnp.where(p["mix"], p["share"], 1.0)[:, None, None, None]
    return w * views + (1 - w) * jnp.roll(views, 1, axis=0)


def standardize(jax, x):
    """utils/image.py's standardize, batched on the device."""
    jnp = jax.numpy
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / jnp.maximum(std, 1.0 / math.sqrt(x[0].size))


def best_accuracy(distances, same):
    """Accuracy at the best threshold over the pairs (the recipe's fold-1 score)."""
    order = np.argsort(distances)
    same = np.asarray(same, bool)[order]
    # threshold just above the k-th smallest distance: the first k pairs called the same
    correct = np.concatenate([[0], np.cumsum(same)]) + (
        (~same).sum() - np.concatenate([[0], np.cumsum(~same)]))
    k = int(np.argmax(correct))
    return float(correct[k] / len(same)), float(distances[order][max(k - 1, 0)])


def warmup_cosine(f, init_lr, min_lr, warmup):
    """The learning rate at fraction `f` of the training time: linear from 0 over the first
    `warmup`, then a cosine from `init_lr` down to `min_lr` at f = 1."""
    if f < warmup:
        return init_lr * f / warmup
    return min_lr + 0.5 * (init_lr - min_lr) * (1 + math.cos(math.pi * (f - warmup)
                                                              / (1 - warmup)))


def adam(params, grads, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Keras's Adam update on lists of arrays (step `t` counted from 1); returns the new
    (params, m, v)."""
    m = [b1 * a + (1 - b1) * g for a, g in zip(m, grads)]
    v = [b2 * a + (1 - b2) * g * g for a, g in zip(v, grads)]
    alpha = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
    return [p - alpha * a / (c ** 0.5 + eps) for p, a, c in zip(params, m, v)], m, v


def load_bundle(folder, limit=0):
    """(bundle.json, training crops, fold-1 crops, fold-1 pairs) of a distill_bundle folder."""
    card = os.path.join(folder, "bundle.json")
    if not os.path.exists(card):
        raise SystemExit(f"{card} not found: make the bundle first (python -m "
                         f"benchmarks.distill_bundle --out {folder}) and carry the folder")
    with open(card, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("format") != FORMAT:
        raise SystemExit(f"{card}: format {info.get('format')!r}, this script reads {FORMAT}; "
                         f"make the bundle again with this checkout")
    images = unpack_images(os.path.join(folder, "train"))
    return (info, images[:limit] if limit else images,
            unpack_images(os.path.join(folder, "fold1")),
            np.load(os.path.join(folder, "fold1_pairs.npy")))


def make_step(jax, teacher, student, size, mix):
    """The jitted training step (state, teacher variables, crops on the device, batch indices,
    random key, learning rate) -> (state, loss): views drawn and rendered, the teacher's
    embedding of each as the target, the cosine loss, Adam. The state is donated."""
    jnp = jax.numpy

    def loss_fn(sv, snv, x, target):
        y, snv = student.stateless_call(sv, snv, x, training=True)
        y = y.astype(jnp.float32)
        y = y / jnp.linalg.norm(y, axis=1, keepdims=True)
        return jnp.mean(1.0 - jnp.sum(y * target, axis=1)), snv

    def step(state, frozen, data, idx, key, lr):
        sv, snv, m, v, t = state
        params = draw_params(jax, key, idx.shape[0], mix)
        src = data[idx]
        big = standardize(jax, blend(jax, render(jax, src, params, 160), params))
        small = standardize(jax, blend(jax, render(jax, src, params, size), params))
        target, _ = teacher.stateless_call(*frozen, big, training=False)
        target = jax.lax.stop_gradient(target.astype(jnp.float32))
        target = target / jnp.linalg.norm(target, axis=1, keepdims=True)
        (loss, snv), grads = jax.value_and_grad(loss_fn, has_aux=True)(sv, snv, small, target)
        sv, m, v = adam(sv, grads, m, v, t + 1, lr)
        return (sv, snv, m, v, t + 1), loss

    return jax.jit(step, donate_argnums=(0,))


def make_scorer(jax, student, fold1, pairs, size, batch_size):
    """(trainable, non-trainable variables) -> (fold-1 accuracy, threshold), on the central
    face of each fold-1 crop, in fixed-size batches (one compile)."""
    jnp = jax.numpy
    lo = int(round(fold1.shape[1] * (1 - FACE_SHARE) / 2))
    faces = fold1[:, lo:fold1.shape[1] - lo, lo:fold1.shape[1] - lo]
    if faces.shape[1] != size:
        from PIL import Image

        faces = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC))
                          for a in faces])

    @jax.jit
    def embed(sv, snv, x):
        y, _ = student.stateless_call(sv, snv, standardize(jax, x.astype(jnp.float32)),
                                      training=False)
        return y.astype(jnp.float32)

    def score(sv, snv):
        parts = []
        for i in range(0, len(faces), batch_size):
            chunk = faces[i:i + batch_size]  # the last one padded to a whole batch
            padded = np.resize(chunk, (batch_size,) + faces.shape[1:])
            parts.append(np.asarray(embed(sv, snv, jnp.asarray(padded)))[:len(chunk)])
        emb = np.concatenate(parts)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        return best_accuracy(np.linalg.norm(emb[pairs[:, 0]] - emb[pairs[:, 1]], axis=1),
                             pairs[:, 2])

    return score


def write_card(path, args, bundle, **fields):
    """The card beside a student's weights (what --model-path reads: size, preprocessing)."""
    from utils.fileio import card_path_for, sha256_of, write_json_atomic

    size = args.input_size
    write_json_atomic(card_path_for(path), {
        "backbone": "mobilenet", "input_shape": [size, size, 3], "preprocessing": "standardize",
        "embedding_size": 128, "mode": "predict",
        "distilled_from": {"teacher": bundle["teacher"], "loss": "cosine", "views": "on the fly",
                           "started_from": os.path.basename(args.init_weights) or None,
                           "command": "python -m benchmarks.distill_accelerated "
                                      + " ".join(sys.argv[1:])},
        **fields, "weights_file": os.path.basename(path), "weights_sha256": sha256_of(path)})


def save_student(student, state, path, args, bundle, **fields):
    """The state's variables into `student`, written atomically with their card."""
    for var, value in zip(student.trainable_variables, state[0]):
        var.assign(value)
    for var, value in zip(student.non_trainable_variables, state[1]):
        var.assign(value)
    student.save_weights(path + ".tmp.weights.h5")
    os.replace(path + ".tmp.weights.h5", path)
    write_card(path, args, bundle, **fields)


def plot_runs(results, out, reference=0.9786):
    """Fold 1's check against passes over the faces, runs that continue each other in a row,
    beside the original's published MobileNet figure; saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    offset = 0.0
    for path in results:
        with open(path, encoding="utf-8") as f:
            history = json.load(f)["history"]
        ax.plot([offset + h["epochs"] for h in history], [100 * h["fold1"] for h in history],
                "o-", label=os.path.splitext(os.path.basename(path))[0])
        offset += history[-1]["epochs"]
    ax.axhline(100 * reference, color="grey", ls="--", label="the original's MobileNet (LFW)")
    ax.set_xlabel("passes over the 11,864 training faces")
    ax.set_ylabel("fold 1 accuracy (%) at best threshold")
    ax.set_title("MobileNet distilled on an accelerator")
    ax.grid(True)
    ax.legend(loc="lower right", fontsize=7)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default=".bundle")
    p.add_argument("--init-weights", default=os.path.join("model_data",
                                                          "facenet_mobilenet.weights.h5"),
                   help="the student's start ('' : from scratch)")
    p.add_argument("--input-size", type=int, default=112)
    p.add_argument("--budget", type=float, default=420,
                   help="seconds from start to the last weights written; training takes what "
                        "set-up and compiling leave")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--init-lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-6)
    p.add_argument("--warmup", type=float, default=0.03, help="share of the training time")
    p.add_argument("--mix", type=float, default=0.25, help="share of views blending two faces")
    p.add_argument("--precision", default="bfloat16", choices=["bfloat16", "float32"])
    p.add_argument("--eval-every", type=float, default=45.0, help="seconds between fold-1 scores")
    p.add_argument("--limit", type=int, default=0, help="the first N training images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="distill_accelerated")
    p.add_argument("--plot", nargs="+", metavar="RESULT",
                   help="only plot these runs' distill_accelerated.json, in order, to --out (a "
                        "PNG)")
    args = p.parse_args(argv)
    if args.plot:
        return plot_runs(args.plot, args.out)

    info, images, fold1, pairs = load_bundle(args.bundle, args.limit)
    os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is first imported
    try:
        import jax
    except ImportError:
        raise SystemExit("this recipe runs Keras on JAX: pip install jax (with its CUDA "
                         "plugin on a GPU machine)") from None
    import keras

    from nets.facenet import facenet
    from nets.weights_io import load_weights

    jnp = jax.numpy
    os.makedirs(args.out, exist_ok=True)
    device = jax.devices()[0]
    device_name = str(getattr(device, "device_kind", device.platform))
    log(event="data", train=len(images), fold1=len(fold1), crop=images.shape[1],
        device=device_name, jax=jax.__version__, keras=keras.__version__)

    if args.precision == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    size, n, bs = args.input_size, len(images), args.batch_size
    teacher = facenet((160, 160, 3), backbone="inception_resnetv1", mode="predict")
    unpack_weights(teacher, os.path.join(args.bundle, "teacher_int8.npz"))
    student = facenet((size, size, 3), backbone="mobilenet", mode="predict")
    if args.init_weights:
        load_weights(student, args.init_weights)

    frozen = ([v.value for v in teacher.trainable_variables],  # arguments, not constants
              [v.value for v in teacher.non_trainable_variables])
    sv = [v.value for v in student.trainable_variables]
    state = (sv, [v.value for v in student.non_trainable_variables],
             [jnp.zeros_like(x) for x in sv], [jnp.zeros_like(x) for x in sv],
             jnp.zeros((), jnp.float32))
    data = jax.device_put(images)
    step = make_step(jax, teacher, student, size, args.mix)
    score = make_scorer(jax, student, fold1, pairs, size, bs)

    def save(name, **fields):
        save_student(student, state, os.path.join(args.out, name), args, info, **fields)

    start_acc, start_thr = score(state[0], state[1])
    log(event="start", fold1=start_acc, threshold=start_thr)
    history = [{"t": 0.0, "step": 0, "epochs": 0.0, "fold1": start_acc}]
    rng = np.random.default_rng(args.seed)
    key = jax.random.PRNGKey(args.seed)
    order, pos = rng.permutation(n), 0

    def batch():  # shuffled passes over the training faces
        nonlocal order, pos
        if pos + bs > n:
            order, pos = rng.permutation(n), 0
        pos += bs
        return jnp.asarray(order[pos - bs:pos])

    key, sub = jax.random.split(key)
    compile_start = time.perf_counter()
    state, loss = step(state, frozen, data, batch(), sub, jnp.float32(0.0))
    log(event="compiled", seconds=round(time.perf_counter() - compile_start, 1),
        loss=float(loss))
    begin = time.perf_counter()
    span = START + args.budget - 15 - begin  # 15 s kept to score and write the weights
    if span <= 0:
        raise SystemExit(f"no training time left in --budget {args.budget}")
    steps, last_eval, best = 1, begin, (start_acc, 0)
    save("best.weights.h5", step=0, fold1=start_acc)
    lr, losses = 0.0, []

    def record(acc, **extra):
        elapsed = time.perf_counter() - begin
        rec = {"t": round(elapsed, 1), "step": steps, "epochs": round(steps * bs / n, 2),
               "lr": lr, **extra, "fold1": acc, "images_per_s": round(steps * bs / elapsed, 1)}
        history.append(rec)
        return rec

    while (f := (time.perf_counter() - begin) / span) < 1:
        lr = warmup_cosine(f, args.init_lr, args.min_lr, args.warmup)
        key, sub = jax.random.split(key)
        state, loss = step(state, frozen, data, batch(), sub, jnp.float32(lr))
        losses.append(loss)
        steps += 1
        if steps % 25 == 0:  # waits for the device now and then: a bounded queue
            losses = [float(np.mean([float(x) for x in losses]))]
        if time.perf_counter() - last_eval >= args.eval_every:
            acc, _ = score(state[0], state[1])
            mean_loss = round(float(np.mean([float(x) for x in losses])), 5)
            losses = []
            log(event="eval", **record(acc, loss=mean_loss))
            if acc > best[0]:
                best = (acc, steps)
                save("best.weights.h5", step=steps, fold1=acc)
            save("last.weights.h5", step=steps, fold1=acc)
            last_eval = time.perf_counter()
    acc, thr = score(state[0], state[1])
    final = record(acc, threshold=thr)
    save("last.weights.h5", step=steps, fold1=acc)
    if acc > best[0]:
        best = (acc, steps)
        save("best.weights.h5", step=steps, fold1=acc)
    result = {"bundle": info, "settings": vars(args), "device": device_name,
              "train_images": n, "history": history, "final": final,
              "best": {"fold1": best[0], "step": best[1]}}
    with open(os.path.join(args.out, "distill_accelerated.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    log(event="done", **final, best=best[0])


if __name__ == "__main__":
    main()
