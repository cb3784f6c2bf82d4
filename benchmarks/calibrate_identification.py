"""How far apart are two different people? Impostor-distance quantiles for identification.

A verification threshold (one comparison) is far too loose for a gallery: a face is compared
with every enrolled person, so the chance that some stranger falls under the threshold grows
with the gallery. This measures, on LFW images of the people of View 2 folds 2-10 (fold 1 stays
unseen, it is the unknown set of benchmarks/gallery_lfw.py), the distance below which a given
share of different-person pairs fall (the false-accept rate of one comparison). The gallery
divides its target false-accept rate by the number of people and reads the threshold here.

    python -m benchmarks.calibrate_identification --lfw-dir ../shared/data/lfw \
        --pairs ../shared/data/lfw_meta/pairs.txt [--backbone mobilenet]

Every model the registry ships needs this table (the gallery refuses open-set identification
without one): run it for a new or retrained model and copy the printed `impostor_far` into its
registry entry (facenet/weights.py, `aligned["identification"]`, or the top level with
--no-align). The result goes to calibrate_identification[_<model>][_noalign].json.
"""
import argparse
import json
import os

import numpy as np

from benchmarks.common import machine, write_result
from facenet.weights import DEFAULT_MODEL

FARS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def impostor_quantiles(emb, labels, fars=FARS, block=2048):
    """{far: distance} over every pair of embeddings with different labels."""
    counts = None
    edges = np.linspace(0.0, 2.0, 20001)  # 1e-4 resolution on the distance
    for i in range(0, len(emb), block):
        d = np.sqrt(np.maximum(2.0 - 2.0 * emb[i:i + block] @ emb.T, 0.0))
        rows = np.arange(i, min(i + block, len(emb)))
        keep = (labels[rows][:, None] != labels[None, :]) & (rows[:, None] < np.arange(
            len(emb))[None, :])
        h, _ = np.histogram(d[keep], bins=edges)
        counts = h if counts is None else counts + h
    cum = np.cumsum(counts) / counts.sum()
    return {far: float(edges[1:][np.searchsorted(cum, far)]) for far in fars}, int(counts.sum())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--backbone", default=None, help="the registry's model of this backbone "
                   "(default: the default model)")
    p.add_argument("--model-path", default=None, help="weights file (default: the registry's)")
    p.add_argument("--no-align", action="store_true", help="fixed crop, no face search (the "
                   "card's top-level table instead of the aligned one)")
    args = p.parse_args(argv)

    from facenet import Facenet
    from facenet.evaluation import embed_distinct, load_lfw_pairs

    pairs, _ = load_lfw_pairs(args.pairs, args.lfw_dir)
    paths = list(dict.fromkeys(q for x in pairs if x.fold > 0 for q in (x.path_1, x.path_2)))
    model = Facenet(model_path=args.model_path, backbone=args.backbone, crop="lfw",
                    align="off" if args.no_align else "auto", align_choice="central",
                    align_cache=True, precision="float32")  # the card's figures are float32's
    table = embed_distinct(model, paths)
    emb = np.stack([table[q] for q in paths])
    names = np.array([os.path.basename(os.path.dirname(q)) for q in paths])
    _, labels = np.unique(names, return_inverse=True)
    quantiles, n = impostor_quantiles(emb, labels)
    for far, d in quantiles.items():
        print(f"FAR {far:g}: distance {d:.4f}")
    print(f"{n:,} different-person pairs among {len(paths)} images of {labels.max() + 1} people")
    table = {f"{k:g}": round(v, 4) for k, v in quantiles.items()}
    name = (model.card or {}).get("name") or os.path.basename(str(model.model_path))
    section = "top level" if args.no_align else '"aligned"'
    print(f"registry entry of {name} ({section} section): \"identification\": "
          f"{{\"impostor_far\": {json.dumps(table)}}}")
    suffix = "" if name == DEFAULT_MODEL else "_" + name.removeprefix("facenet_")
    write_result("calibrate_identification" + suffix + ("_noalign" if args.no_align else ""), {
        "machine": machine(), "model": name, "align": model.align, "images": len(paths),
        "people": int(labels.max() + 1), "impostor_pairs": n,
        "impostor_far_thresholds": table, "settings": vars(args)})


if __name__ == "__main__":
    main()
