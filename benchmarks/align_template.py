"""Where should aligned landmarks go? Measure the template and compare alignment recipes on LFW.

1. MTCNN on every distinct image of the LFW pairs (detections cached in benchmarks/results).
2. The template: mean landmark positions inside the box crops the pretrained FaceNet was
   trained on (MTCNN box + 32 px margin at 160 px, no rotation).
3. LFW 10-fold accuracy of the default model for each recipe: centre crop, box crop, and the
   similarity warp onto the template at a few margins.

    python -m benchmarks.align_template --lfw-dir ../shared/data/lfw \
        --pairs ../shared/data/lfw_meta/pairs.txt
"""
import argparse
import json
import os
import time

import numpy as np

from benchmarks.common import RESULTS, machine, write_result


def detections(paths, cache_path):
    from tqdm import tqdm

    from facenet.align import Face, FaceDetector, choose_face
    from utils.image import load_image

    table = {}
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            table = json.load(f)
    todo = [p for p in paths if p not in table]
    det = FaceDetector()
    start = time.perf_counter()
    for i in tqdm(range(0, len(todo), 64), desc="Detecting", unit="batch"):
        chunk = todo[i:i + 64]
        images = [load_image(p) for p in chunk]
        for p, im, faces in zip(chunk, images, det.detect_many(images)):
            face = choose_face(faces, im.size, "central")
            table[p] = face.to_dict() if face else None
    seconds = time.perf_counter() - start
    if todo:
        from utils.fileio import write_json_atomic
        write_json_atomic(cache_path, table)
    return {p: (Face.from_dict(table[p]) if table[p] else None) for p in paths}, len(todo), seconds


def procrustes_template(shapes, placement, iterations=10):
    """Generalised Procrustes mean of the landmark sets (the shape a similarity transform can
    reach), then moved and scaled by a similarity onto `placement` (the box-crop mean)."""
    from facenet.align import similarity_transform, transform_points

    mean = placement.copy()
    for _ in range(iterations):
        fitted = [transform_points(similarity_transform(s, mean), s) for s in shapes]
        new = np.mean(fitted, axis=0)
        new = transform_points(similarity_transform(new, placement), new)  # fix the gauge
        if np.abs(new - mean).max() < 1e-7:
            break
        mean = new
    return mean


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--margins", default="-0.05,0.0,0.05")
    p.add_argument("--recipes", default="centre,box,similarity",
                   help="which recipes to score (comma-separated)")
    p.add_argument("--symmetric", action="store_true",
                   help="mirror-average the measured template (left/right symmetric)")
    p.add_argument("--procrustes", action="store_true",
                   help="the Procrustes mean face shape, placed where the box crops put it")
    p.add_argument("--skip-eval", action="store_true", help="only measure the template")
    args = p.parse_args(argv)

    from facenet.align import box_matrix, similarity_transform, transform_points
    from facenet.evaluation import load_lfw_pairs

    pairs, _ = load_lfw_pairs(args.pairs, args.lfw_dir)
    paths = list(dict.fromkeys(x for pr in pairs for x in (pr.path_1, pr.path_2)))
    faces, n_detected, det_seconds = detections(paths, os.path.join(RESULTS,
                                                                     "lfw_detections.json"))
    found = [f for f in faces.values() if f is not None]
    print(f"{len(paths)} images, faces found in {len(found)}; detection of {n_detected} took "
          f"{det_seconds:.1f} s")
    pts = np.stack([transform_points(box_matrix(f, (160, 160)), f.landmarks) / 160.0
                    for f in found])
    template = pts.mean(0)
    if args.procrustes:
        template = procrustes_template([f.landmarks for f in found], template)
    if args.symmetric:
        mirrored = template[[1, 0, 2, 4, 3]] * np.array([-1.0, 1.0]) + np.array([1.0, 0.0])
        template = (template + mirrored) / 2
    print("Template (fractions of the crop):")
    print(np.array2string(template, precision=4))
    eye_err = np.array([np.abs(transform_points(similarity_transform(f.landmarks, template * 160),
                                                f.landmarks)[:2] - template[:2] * 160).max()
                        for f in found])
    print(f"Eyes after alignment: {np.mean(eye_err):.2f} px from the template on average, "
          f"95th percentile {np.percentile(eye_err, 95):.2f} px (at 160x160)")
    result = {"machine": machine(), "images": len(paths), "faces_found": len(found),
              "eye_error_px_mean": round(float(np.mean(eye_err)), 2),
              "eye_error_px_p95": round(float(np.percentile(eye_err, 95)), 2),
              "settings": vars(args),
              "detect_seconds": round(det_seconds, 1), "detected_now": n_detected,
              "template": template.round(4).tolist(),
              "template_std": pts.std(0).round(4).tolist(), "recipes": {}}
    if not args.skip_eval:
        result["recipes"] = compare_recipes(pairs, faces, template, args)
    write_result("align_template", result)


def compare_recipes(pairs, faces, template, args):
    import facenet.align as align
    from facenet import Facenet
    from facenet.evaluation import evaluate_pairs
    from utils.image import load_image

    align.TEMPLATE = template
    model = Facenet(crop="lfw", align="off")  # each recipe below replaces the crop step
    centre_prepare = model.prepare
    wanted = args.recipes.split(",")
    recipes = {}
    if "centre" in wanted:
        recipes["centre crop"] = None
    if "box" in wanted:
        recipes["box"] = ("box", 0.0)
    if "similarity" in wanted:
        for m in args.margins.split(","):
            recipes[f"similarity margin {float(m):+.2f}"] = ("similarity", float(m))
    rows = {}
    for name, recipe in recipes.items():
        if recipe is None:
            model.preparer.fixed_prepare = centre_prepare
        else:
            method, margin = recipe

            def prepare(path, method=method, margin=margin):
                face = faces.get(path)
                if face is None:
                    return centre_prepare(path)
                return align.align_face(load_image(path), face, (160, 160), margin,
                                        method).image
            model.preparer.fixed_prepare = prepare
        r = evaluate_pairs(model, pairs, progress=False)
        rows[name] = {k: r[k] for k in ("accuracy_mean", "accuracy_std", "threshold_mean",
                                         "val_mean", "auc", "wall_seconds")}
        print(f"{name:28s} acc {100 * r['accuracy_mean']:.2f}% +- "
              f"{100 * r['accuracy_std']:.2f}  thr {r['threshold_mean']:.3f}  "
              f"VAL {100 * r['val_mean']:.2f}%  AUC {r['auc']:.4f}  {r['wall_seconds']:.0f} s",
              flush=True)
    return rows


if __name__ == "__main__":
    main()
