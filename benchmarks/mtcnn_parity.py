"""MTCNN on ONNX Runtime against the `mtcnn` package on TensorFlow, on LFW photos: the largest
differences of boxes, landmarks and confidences, faces found by one and not the other, and the
time each takes, in one run.

    python -m benchmarks.mtcnn_parity [--lfw-dir ../shared/data/lfw] [--photos 200]

Photos are spread over LFW (every k-th file in name order), run one at a time at
min_face_size 20, as FaceDetector runs them; every detection ONet keeps is compared, in the
order both give them.
"""
import argparse
import glob
import os
import sys
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--photos", type=int, default=200)
    args = p.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.lfw_dir, "*", "*.jpg")))
    if not paths:
        raise SystemExit(f"no LFW photos under --lfw-dir {args.lfw_dir}")
    from mtcnn import MTCNN
    from PIL import Image

    from benchmarks.common import machine, write_result
    from facenet.mtcnn_onnx import OnnxMTCNN

    package, onnx = MTCNN(), OnnxMTCNN()
    picked = paths[::max(1, len(paths) // args.photos)][:args.photos]
    worst = {"box_px": 0.0, "landmark_px": 0.0, "confidence": 0.0}
    seconds = {"package": 0.0, "onnx": 0.0}
    faces, differ = 0, []
    for path in picked:
        image = np.asarray(Image.open(path).convert("RGB"))
        t = time.perf_counter()
        want = np.asarray(package.detect_faces(image, box_format="xyxy", output_type="numpy",
                                               min_face_size=20), np.float64).reshape(-1, 16)
        seconds["package"] += time.perf_counter() - t
        t = time.perf_counter()
        got = onnx.detect([image], 20)
        seconds["onnx"] += time.perf_counter() - t
        if got.shape != want.shape:
            differ.append({"photo": os.path.relpath(path, args.lfw_dir),
                           "package": len(want), "onnx": len(got)})
            continue
        faces += len(got)
        if len(got):
            d = np.abs(got - want)
            worst["box_px"] = max(worst["box_px"], float(d[:, 1:5].max()))
            worst["landmark_px"] = max(worst["landmark_px"], float(d[:, 6:].max()))
            worst["confidence"] = max(worst["confidence"], float(d[:, 5].max()))
    result = {"machine": machine(), "photos": len(picked), "faces": faces,
              "largest_difference": worst, "photos_with_other_faces": differ,
              "seconds": {k: round(v, 2) for k, v in seconds.items()},
              "command": "python -m benchmarks.mtcnn_parity " + " ".join(
                  argv if argv is not None else sys.argv[1:])}
    print(f"{len(picked)} photos, {faces} faces; largest difference: box "
          f"{worst['box_px']:.2g} px, landmark {worst['landmark_px']:.2g} px, confidence "
          f"{worst['confidence']:.2g}; other faces in {len(differ)} photos; "
          f"{seconds['package']:.1f} s package, {seconds['onnx']:.1f} s ONNX Runtime")
    write_result("mtcnn_parity", result)


if __name__ == "__main__":
    main()
