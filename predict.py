"""Are these two faces the same person?

    python predict.py A.jpg B.jpg        compare two images, save the side-by-side figure
    python predict.py --example          compare the example photos that come with the weights
    python predict.py                    ask for two file names in a loop (the original's way)
"""
import argparse
import os
import sys

from utils.errors import FacenetError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="*", help="two face images to compare")
    p.add_argument("--example", action="store_true",
                   help="compare the bundled example photos (two of one person, one of another)")
    p.add_argument("--model-path", default=None,
                   help="weights (.weights.h5, .keras or legacy .h5); default: the pretrained "
                        "Inception-ResNet-V1 FaceNet, fetched on first use")
    p.add_argument("--backbone", default=None, choices=["mobilenet", "inception_resnetv1"],
                   help="network of --model-path (default: from its card, else mobilenet)")
    p.add_argument("--preprocessing", default=None, choices=["scale01", "standardize"],
                   help="pixel transform (default: from the model card, else scale01)")
    p.add_argument("--threshold", type=float, default=None,
                   help="distance below which two faces are the same person "
                        "(default: the model card's, calibrated on LFW)")
    p.add_argument("--crop", default="none",
                   help="'none' (the whole image is the face), 'lfw' (the face box of a 250x250 "
                        "LFW image), or x0,y0,x1,y1 fractions (default: %(default)s)")
    p.add_argument("--out", default=os.path.join("logs", "predict.png"),
                   help="where to save the side-by-side figure (default: %(default)s); "
                        "'' saves none")
    p.add_argument("--show", action="store_true", help="also open the figure in a window")
    args = p.parse_args(argv)
    if args.images and len(args.images) != 2:
        p.error(f"give exactly two images, got {len(args.images)}")
    if args.images and args.example:
        p.error("give either two images or --example, not both")
    return args


def numbered(out, k):
    stem, ext = os.path.splitext(out)
    return f"{stem}_{k}{ext}"


def compare(model, a, b, out, show):
    result = model.compare(a, b, out=out or None, show=show)
    print(f"{a}  vs  {b}\n  distance {result.distance:.4f}, threshold {result.threshold:.4f}: "
          f"{result.verdict}")
    if out:
        print(f"  figure: {out}")
    return result


def example_pairs():
    from facenet.weights import MODEL_DATA

    folder = os.path.join(MODEL_DATA, "examples")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if len(names) < 3:
        raise FacenetError(f"the example photos are missing from {folder}; delete "
                           f"model_data/facenet_inception_resnetv1.json and run again to refetch")
    paths = [os.path.join(folder, n) for n in names]
    # Files are named <person>_<n>.jpg: pair the first person's two photos, then across people.
    return [(paths[0], paths[1]), (paths[0], paths[2])]


def ask(prompt):
    try:
        answer = input(prompt).strip()
    except EOFError:
        return None
    return None if answer.lower() in ("", "q", "quit", "exit") else answer


def interactive(model, out, show):
    """The original's loop: two file names, a distance, again; empty line, q or EOF to stop."""
    from utils.errors import ImageLoadError

    k = 0
    while True:
        a = ask("Input image_1 filename (empty line or q to quit): ")
        if a is None:
            break
        b = ask("Input image_2 filename: ")
        if b is None:
            break
        try:
            k += 1
            compare(model, a, b, numbered(out, k) if out else out, show)
        except ImageLoadError as e:
            print(f"  {e}. Try again.")
    print("Bye.")


def main(argv=None):
    args = parse_args(argv)
    try:
        from facenet import Facenet

        model = Facenet(model_path=args.model_path, backbone=args.backbone,
                        preprocessing=args.preprocessing, threshold=args.threshold,
                        crop=args.crop)
        if args.example:
            for k, (a, b) in enumerate(example_pairs(), start=1):
                compare(model, a, b, numbered(args.out, k) if args.out else "", args.show)
        elif args.images:
            compare(model, *args.images, args.out, args.show)
        else:
            interactive(model, args.out, args.show)
    except (FacenetError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
