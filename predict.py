"""Are these two faces the same person?

    python predict.py A.jpg B.jpg        compare two photos, save the side-by-side figure
    python predict.py --all-faces A B    compare every face of A with every face of B
    python predict.py --example          compare the example photos that come with the weights
    python predict.py                    ask for two file names in a loop (the original's way)
"""
import argparse
import functools
import os
import shlex
import sys

from facenet.cli import add_logging_options, add_model_options, configure_logging
from utils.checks import threshold_arg
from utils.errors import FacenetError, cli_errors
from utils.precision import DEFAULT_PRECISION


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="*", help="two photos (or face crops) to compare")
    p.add_argument("--example", action="store_true",
                   help="compare the bundled example photos (two of one person, one of another)")
    add_model_options(p, precision=DEFAULT_PRECISION, engine="auto")
    p.add_argument("--threshold", type=threshold_arg, default=None,
                   help="distance below which two faces are the same person "
                        "(default: the model card's, calibrated on LFW)")
    align = p.add_mutually_exclusive_group()
    align.add_argument("--align", dest="align", action="store_const", const="required",
                       default="auto",
                       help="find and align the face; a photo without a face is an error "
                            "(default: align when a face is found, else use the whole image)")
    align.add_argument("--no-align", dest="align", action="store_const", const="off",
                       help="no face search: the images are face crops already")
    p.add_argument("--all-faces", action="store_true",
                   help="compare every face of the first photo with every face of the second "
                        "(one photo: every pair of its faces)")
    p.add_argument("--crop", default="none",
                   help="without alignment: 'none' (the whole image is the face), 'lfw' (the "
                        "face box of a 250x250 LFW image), or x0,y0,x1,y1 fractions "
                        "(default: %(default)s)")
    p.add_argument("--out", default=os.path.join("logs", "predict.png"),
                   help="where to save the figure: the faces side by side, or with --all-faces "
                        "the photos with their faces named as in the printout (default: "
                        "%(default)s); '' saves none")
    p.add_argument("--show", action="store_true", help="also open the figure in a window")
    add_logging_options(p)
    args = p.parse_args(argv)
    if args.all_faces:
        if not 1 <= len(args.images) <= 2:
            p.error(f"--all-faces takes one or two photos, got {len(args.images)}")
        if args.align == "off":
            p.error("--all-faces finds faces: it cannot go with --no-align")
    elif args.images and len(args.images) != 2:
        p.error(f"give exactly two images, got {len(args.images)}")
    if args.images and args.example:
        p.error("give either two images or --example, not both")
    return args


def numbered(out, k):
    stem, ext = os.path.splitext(out)
    return f"{stem}_{k}{ext}"


def describe_face(record):
    """One line on how an image became the compared face."""
    if record.how == "aligned":
        x0, y0, x1, y1 = record.face.box
        which = (f"the largest of {record.faces_found} faces" if record.faces_found > 1
                 else "the face")
        return (f"aligned {which} at box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}), "
                f"confidence {record.face.confidence:.3f}")
    if record.how == "fallback":
        return "no face found: compared the whole image (is it a face crop? see --no-align)"
    return "used as given (no alignment)"


def compare(model, a, b, out, show):
    result = model.compare(a, b)
    print(f"{a}  vs  {b}")
    if model.align != "off":
        for name, record in zip((a, b), result.faces):
            print(f"  {os.path.basename(str(name))}: {describe_face(record)}")
    print(f"  distance {result.distance:.4f}, threshold {result.threshold:.4f}: {result.verdict}")
    if out or show:  # after the verdict: a figure that cannot be saved must not lose it
        from utils.plots import draw_pair

        save_figure(functools.partial(draw_pair, *result.crops, result), out, show)
    return result


def save_figure(draw, out, show):
    """`draw(out=..., show=...)`; a figure that cannot be saved is one error naming --out."""
    replaced = bool(out) and os.path.exists(out)
    try:
        draw(out=out, show=show)
    except OSError as e:
        raise FacenetError(f"cannot save the figure to {out}: {e.strerror or e}; choose another "
                           f"--out, or --out '' for none") from None
    if out:
        print(f"  figure: {out}" + (" (replaced the previous one)" if replaced else ""))


def compare_all_faces(model, a, b=None, out="", show=False):
    """Every face of photo A against every face of B (one photo: each pair of its faces).
    Faces are named A1, A2, ... B1, ... (largest first) alike in the printout and the
    figure, which shows the photos with the named boxes and the verdicts."""
    faces_a, faces_b, results = model.compare_all(a, b)
    photos = [("A", a, faces_a)] + ([("B", b, faces_b)] if b is not None else [])
    for letter, name, faces in photos:
        print(f"{name}: {len(faces)} face(s)" + ("" if faces else " - no face found"))
        for k, f in enumerate(faces, start=1):
            x0, y0, x1, y1 = f.face.box
            print(f"  {letter}{k}: box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}), "
                  f"confidence {f.face.confidence:.3f}")
    other = photos[-1][0]
    pairs = [(f"A{i + 1}", f"{other}{j + 1}", r) for i, j, r in results]
    for name_1, name_2, r in pairs:
        print(f"  {name_1} vs {name_2}: distance {r.distance:.4f}: {r.verdict}")
    if not results:
        print("  nothing to compare: " + ("a photo has no face" if b is not None
                                          else "fewer than two faces"))
    if out or show:
        from utils.image import load_image
        from utils.plots import draw_faces

        drawn = [(letter, load_image(name), [f.face.box for f in faces])
                 for letter, name, faces in photos]
        save_figure(functools.partial(draw_faces, drawn, pairs, model.threshold), out, show)
    return results


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


def as_path(answer):
    """A path as a shell user types or pastes it: 'a b.jpg', "a b.jpg", a\\ b.jpg, ~/a.jpg."""
    if not os.path.exists(answer):
        try:
            words = shlex.split(answer)
        except ValueError:  # an unbalanced quote: take the answer as it is
            words = []
        if len(words) == 1:
            answer = words[0]
    return os.path.expanduser(answer)


def ask_image(prompt):
    """Ask until the answer names a file (so a typo is caught before the next question);
    None to stop."""
    while True:
        answer = ask(prompt)
        if answer is None:
            return None
        path = as_path(answer)
        if os.path.isfile(path):
            return path
        print(f"  {path}: {'a folder, not an image' if os.path.isdir(path) else 'not found'}. "
              f"Try again.")


def interactive(model, out, show):
    """The original's loop: two file names, a distance, again; empty line, q or EOF to stop."""
    from utils.errors import ImageLoadError

    k = 0
    while True:
        a = ask_image("Input image_1 filename (empty line or q to quit): ")
        if a is None:
            break
        b = ask_image("Input image_2 filename: ")
        if b is None:
            break
        try:
            k += 1
            compare(model, a, b, numbered(out, k) if out else out, show)
        except ImageLoadError as e:
            print(f"  {e}. Try again.")
    print("Bye.")


def check_before_loading(args):
    """What can fail without the model fails before it loads (seconds, not a minute)."""
    from utils.plots import check_figure_file

    if not (args.images or args.example) and (sys.stdin is None or sys.stdin.closed):
        raise FacenetError("no images given, and no input to ask for them (stdin is closed): "
                           "give two image paths, or --example")
    if args.out:
        check_figure_file(args.out, "--out")
    from utils.image import load_image

    for image in args.images:  # a missing or corrupt photo, named now
        load_image(image)


def main(argv=None):
    args = parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():
        check_before_loading(args)
        from facenet import Facenet

        model = Facenet(model_path=args.model_path, backbone=args.backbone,
                        preprocessing=args.preprocessing, threshold=args.threshold,
                        crop=args.crop, align=args.align, precision=args.precision,
                        engine=args.engine,
                        # a few images: folding BatchNorm (1.4 s) costs more than it saves
                        fold_batchnorm=False)
        if args.all_faces:
            compare_all_faces(model, *args.images, out=args.out, show=args.show)
        elif args.example:
            for k, (a, b) in enumerate(example_pairs(), start=1):
                compare(model, a, b, numbered(args.out, k) if args.out else "", args.show)
        elif args.images:
            compare(model, *args.images, args.out, args.show)
        else:
            interactive(model, args.out, args.show)


if __name__ == "__main__":
    main()
