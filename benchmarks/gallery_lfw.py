"""Open-set identification on LFW with the face gallery.

Enroll the people of View 2 folds 2-10 who have at least 2 images, with the first half of each
person's images (at most --max-per-person); query with the other half (known queries) and with
the people of fold 1, who are never enrolled (every answer but "unknown" is a false accept).

    python -m benchmarks.gallery_lfw --lfw-dir ../shared/data/lfw \
        --people ../shared/data/lfw_meta/people.txt [--backbone mobilenet]

The result goes to gallery_lfw[_<model>].json; "unknown_false_accept_rate" is how often a
stranger is named someone.
"""
import argparse
import os
import time

import numpy as np

from benchmarks.common import machine, write_result
from utils.checks import threshold_arg


def split_people(people_path, lfw_dir, max_per_person=10, max_unknown=5):
    """(enroll {name: paths}, known queries [(name, path)], unknown queries [(name, path)])."""
    from utils.lfw_people import read_people_folds

    folds = read_people_folds(people_path)

    def images(name):
        folder = os.path.join(lfw_dir, name)
        return [os.path.join(folder, f) for f in sorted(os.listdir(folder))]

    enroll, known = {}, []
    for fold in folds[1:]:
        for name, count in fold:
            if count < 2:
                continue
            paths = images(name)
            half = len(paths) // 2
            enroll[name] = paths[:half][:max_per_person]
            known += [(name, p) for p in paths[half:][:max_per_person]]
    unknown = [(name, p) for name, _ in folds[0] for p in images(name)[:max_unknown]]
    return enroll, known, unknown


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--people", default="../shared/data/lfw_meta/people.txt")
    p.add_argument("--max-per-person", type=int, default=10,
                   help="at most this many images enrolled and queried per person")
    p.add_argument("--max-unknown", type=int, default=5,
                   help="at most this many query images per fold-1 person")
    p.add_argument("--no-align", action="store_true", help="centre crop instead of MTCNN")
    p.add_argument("--threshold", type=threshold_arg, default=None, help="default: the model card's")
    p.add_argument("--backbone", default=None, help="the registry's model of this backbone "
                   "(default: the default model)")
    args = p.parse_args(argv)

    from facenet import Facenet
    from facenet.gallery import Gallery

    enroll, known, unknown = split_people(args.people, args.lfw_dir, args.max_per_person,
                                          args.max_unknown)
    model = Facenet(backbone=args.backbone, crop="lfw", align="off" if args.no_align else "auto",
                    align_choice="central", align_cache=True, threshold=args.threshold)
    start = time.perf_counter()
    paths = [x for ps in enroll.values() for x in ps] + [x for _, x in known + unknown]
    from facenet.evaluation import embed_distinct

    table = embed_distinct(model, paths)
    embed_seconds = time.perf_counter() - start
    g = Gallery(":memory:")  # searched here, never stored
    g.check_model(model)  # takes the model's identity, thresholds and impostor table
    for name, ps in enroll.items():
        g.add(name, np.stack([table[x] for x in ps]), ps)
    thresholds = {"card verification threshold": model.threshold}
    if g.far_table:  # without the card's impostor table the gallery has no default (--no-align)
        thresholds["gallery default (1% over the gallery)"] = g.default_threshold()
    if args.threshold is not None:
        thresholds = {"given threshold": args.threshold}
    known_emb = np.stack([table[x] for _, x in known])
    unknown_emb = np.stack([table[x] for _, x in unknown])
    truth = [n for n, _ in known]
    rows = {}
    for match in ("nearest", "mean"):
        for label, threshold in thresholds.items():
            k_ids = g.identify_embeddings(known_emb, threshold, top_k=5, match=match)
            u_ids = g.identify_embeddings(unknown_emb, threshold, top_k=5, match=match)
            row = {
                "threshold": round(float(threshold), 4),
                "rank1": np.mean([i.candidates[0][0] == t for i, t in zip(k_ids, truth)]),
                "rank5": np.mean([t in [c for c, _ in i.candidates]
                                  for i, t in zip(k_ids, truth)]),
                "identified_correctly": np.mean([i.name == t for i, t in zip(k_ids, truth)]),
                "known_said_unknown": np.mean([not i.known for i in k_ids]),
                "known_given_wrong_name": np.mean([i.known and i.name != t
                                                   for i, t in zip(k_ids, truth)]),
                "unknown_false_accept_rate": np.mean([i.known for i in u_ids])}
            rows[f"{match}, {label}"] = row
            print(f"match={match:8s} {label} {threshold:.4f}: rank-1 {100 * row['rank1']:.2f}%  "
                  f"rank-5 {100 * row['rank5']:.2f}%  named correctly "
                  f"{100 * row['identified_correctly']:.2f}%  known called unknown "
                  f"{100 * row['known_said_unknown']:.2f}%  wrong name "
                  f"{100 * row['known_given_wrong_name']:.2f}%  unknown accepted "
                  f"{100 * row['unknown_false_accept_rate']:.2f}%", flush=True)
    result = {"machine": machine(), "thresholds": thresholds,
              "align": model.align, "enrolled_people": len(enroll),
              "enrolled_images": len(g), "known_queries": len(known),
              "unknown_queries": len(unknown), "unknown_people": len({n for n, _ in unknown}),
              "embed_seconds": round(embed_seconds, 1),
              "alignment": dict(model.preparer.stats), "results": rows,
              "settings": vars(args)}
    print(f"{len(enroll)} people enrolled with {len(g)} images; {len(known)} known and "
          f"{len(unknown)} unknown queries ({result['unknown_people']} people); embedding "
          f"{embed_seconds:.0f} s")
    name = (model.card or {}).get("name", "")
    default = Facenet.get_defaults("backbone") is None and args.backbone is None
    write_result("gallery_lfw" + ("" if default else "_" + name.removeprefix("facenet_")),
                 {"model": name, **result})


if __name__ == "__main__":
    main()
