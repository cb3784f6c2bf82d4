"""How far apart are two different people? Impostor-distance quantiles for identification.

A verification threshold (one comparison) is far too loose for a gallery: a face is compared
with every enrolled person, so the chance that some stranger falls under the threshold grows
with the gallery. This measures, on LFW images of the people of View 2 folds 2-10 (fold 1 stays
unseen, it is the unknown set of benchmarks/gallery_lfw.py), the distance below which a given
share of different-person pairs fall (the false-accept rate of one comparison). The gallery
divides its target false-accept rate by the number of people and reads the threshold here.

    python -m benchmarks.calibrate_identification --lfw-dir ../shared/data/lfw \
        --pairs ../shared/data/lfw_meta/pairs.txt
"""
import argparse
import os

import numpy as np

from benchmarks.common import machine, write_result

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
    args = p.parse_args(argv)

    from facenet import Facenet
    from facenet.evaluation import embed_distinct, load_lfw_pairs

    pairs, _ = load_lfw_pairs(args.pairs, args.lfw_dir)
    paths = list(dict.fromkeys(q for x in pairs if x.fold > 0 for q in (x.path_1, x.path_2)))
    model = Facenet(crop="lfw", align="auto", align_choice="central", align_cache=True,
                    precision="float32")  # the card's figures are float32's
    table = embed_distinct(model, paths)
    emb = np.stack([table[q] for q in paths])
    names = np.array([os.path.basename(os.path.dirname(q)) for q in paths])
    _, labels = np.unique(names, return_inverse=True)
    quantiles, n = impostor_quantiles(emb, labels)
    for far, d in quantiles.items():
        print(f"FAR {far:g}: distance {d:.4f}")
    print(f"{n:,} different-person pairs among {len(paths)} images of {labels.max() + 1} people")
    write_result("calibrate_identification", {
        "machine": machine(), "images": len(paths), "people": int(labels.max() + 1),
        "impostor_pairs": n, "impostor_far_thresholds": {f"{k:g}": round(v, 4)
                                                         for k, v in quantiles.items()}})


if __name__ == "__main__":
    main()
