"""Score a FaceNet model on LFW pairs: 10-fold accuracy, threshold, VAL@FAR, AUC, EER and ROC.

    python eval_lfw.py --lfw-dir LFW_DIR --pairs PAIRS

LFW_DIR holds LFW's images as <name>/<name>_NNNN.jpg (the deep-funneled release is what the
model cards' figures use); PAIRS is LFW's View 2 pairs.txt.
"""
import argparse
import datetime
import os
import sys

from facenet.cli import add_logging_options, add_model_options, configure_logging
from utils.checks import rate_arg
from facenet.evaluation import headline_accuracy
from utils.errors import FacenetError, cli_errors
from utils.lfw import parse_folds
from utils.precision import DEFAULT_PRECISION


def folds_option(text):
    try:
        return parse_folds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="lfw", help="LFW image folder: <dir>/<name>/<name>_NNNN.jpg "
                   "(default: %(default)s)")
    p.add_argument("--pairs", default="model_data/lfw_pair.txt",
                   help="LFW View 2 pairs file, LF or CRLF (default: %(default)s)")
    add_model_options(p, precision=DEFAULT_PRECISION, engine="auto")
    p.add_argument("--crop", default="lfw",
                   help="'lfw' (the fixed face box of 250x250 LFW images), 'none', or "
                        "x0,y0,x1,y1 fractions (default: %(default)s)")
    p.add_argument("--align", action="store_true",
                   help="find the face with MTCNN and align it before embedding; where none is "
                        "found the --crop box is used (the report counts those)")
    p.add_argument("--align-margin", type=float, default=None,
                   help="border around the aligned face, as a fraction of the side "
                        "(default: the model card's, else 0)")
    p.add_argument("--align-cache", default=None,
                   help="folder for aligned crops, so a second run costs only the embedding "
                        "(default: aligned/ in the weights cache); 'none' disables it")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    p.add_argument("--flip", action="store_true",
                   help="add the embedding of the mirrored image to each embedding")
    p.add_argument("--folds", type=folds_option, default=None,
                   help="score only these official folds, counted from 1: 1, 1,3 or 2-10 "
                        "(one fold: accuracy at its own best threshold, not cross-validated; "
                        "default: all)")
    p.add_argument("--skip-missing", action="store_true",
                   help="score the pairs whose images exist instead of stopping at a missing one")
    p.add_argument("--far", type=rate_arg, default=1e-3, help="FAR for VAL (default: 1e-3)")
    p.add_argument("--roc", default="logs/roc.png", help="ROC curve PNG (default: %(default)s)")
    p.add_argument("--report", default="logs/eval_lfw.json",
                   help="JSON report (default: %(default)s)")
    p.add_argument("--update-card", action="store_true",
                   help="store the measured threshold and accuracy in the model's card")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_logging_options(p)
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def format_report(r):
    undefined = r.get("undefined", {})
    lines = [f"Pairs: {r['pairs']}   images embedded: {r['images']}   missing images: "
             f"{r['missing_images']}   flip: {r['flip']}   time: {r['wall_seconds']:.1f} s"]
    if "accuracy_mean" not in r and "best_threshold_accuracy" in r:
        accuracy, what = headline_accuracy(r)
        lines.append(f"Accuracy: {100 * accuracy:.2f}% ({what}); threshold: undefined "
                     f"({undefined.get('accuracy')})")
    elif "accuracy_mean" in r:
        lines += [
            f"Accuracy: {100 * r['accuracy_mean']:.2f}% +- {100 * r['accuracy_std']:.2f}% "
            f"(std over {len(r['folds']['fold'])} folds; standard error "
            f"{100 * r['accuracy_sem']:.2f}%)",
            f"Threshold: {r['threshold_mean']:.3f} +- {r['threshold_std']:.3f}",
        ]
    else:
        lines.append(f"Accuracy, threshold, VAL: undefined ({undefined.get('accuracy')})")
    if r.get("val_mean") is not None:
        lines.append(f"VAL: {100 * r['val_mean']:.2f}% +- {100 * r['val_std']:.2f}% @ FAR = "
                     f"{100 * r['far_mean']:.3f}% (target {r['far_target']:g})")
    elif "val" in undefined:
        lines.append(f"VAL, FAR: undefined ({undefined['val']}; both kinds are needed)")
    if "alignment" in r:
        a = r["alignment"]
        lines.append(f"Aligned: {a['aligned']}   no face found (centre crop used): "
                     f"{a['fallback']}   from the cache: {a['cached']}")
    lines.append(f"Best single threshold on all pairs: {r['best_threshold']:.2f} "
                 f"({100 * r['best_threshold_accuracy']:.2f}%)")
    if r["auc"] is None:
        lines.append(f"AUC, EER: undefined ({undefined['auc']}; both kinds are needed)")
    else:
        lines.append(f"AUC: {r['auc']:.4f}   EER: {100 * r['eer']:.2f}%")
    return "\n".join(lines)


def check_card_pairs(pairs, pairs_path):
    """--update-card stores a cross-validated threshold: refuse pairs that cannot give one,
    before the evaluation rather than after it."""
    from utils.metrics import one_kind

    if len({p.fold for p in pairs}) < 2:
        raise FacenetError(f"--update-card needs a threshold cross-validated over two or more "
                           f"folds; the pairs of {pairs_path} make one fold")
    kind = one_kind([p.same for p in pairs])
    if kind:
        raise FacenetError(f"--update-card needs both kinds of pair to set a threshold; the "
                           f"pairs of {pairs_path} are all '{kind}' pairs")


def card_to_update(predictor):
    from facenet.weights import card_path_for, read_card

    card = read_card(predictor.model_path)
    if card is None:
        raise FacenetError(f"{predictor.model_path} has no card to update "
                           f"({card_path_for(predictor.model_path)}); leave out --update-card")
    return card


def update_card(predictor, card, report, command):
    from facenet.weights import card_path_for
    from utils.fileio import write_json_atomic

    lfw = {k: report[k] for k in ("accuracy_mean", "accuracy_std", "threshold_mean",
                                  "threshold_std", "val_mean", "val_std", "far_target",
                                  "auc", "eer", "pairs", "flip", "wall_seconds")}
    lfw.update(command=command, measured=datetime.date.today().isoformat())
    if "alignment" in report:  # aligned input has its own threshold
        settings = report["alignment"]["settings"]
        lfw.update(fallback_images=report["alignment"]["fallback"], fallback_crop=predictor.crop)
        card["aligned"] = {**card.get("aligned", {}),  # keeps the identification table
                           "threshold": round(report["threshold_mean"], 4),
                           "method": settings["method"], "margin": settings["margin"],
                           "lfw": lfw}
    else:
        card["threshold"] = round(report["threshold_mean"], 4)
        card["lfw"] = {**lfw, "crop": predictor.crop}
    # and the engine's own entry, which the predictor takes first (Facenet.card_threshold)
    entry = card.setdefault("engines", {}).setdefault(
        f"{predictor.engine} {predictor.precision}", {})
    figures = {k: lfw[k] for k in ("accuracy_mean", "accuracy_std", "pairs")}
    figures["threshold_mean"] = round(report["threshold_mean"], 4)
    if "alignment" in report:
        entry.update(threshold=figures["threshold_mean"], lfw_aligned=figures)
    else:
        entry["lfw_centre_crop"] = figures
    entry.update(command=command, measured=lfw["measured"])  # kept when the registry's change
    write_json_atomic(card_path_for(predictor.model_path), card)


def main(argv=None):
    args = parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():
        return run(args, argv)


def run(args, argv):
    """Every input and output is checked before the model loads; the card before the
    evaluation."""
    from facenet.evaluation import evaluate_pairs, load_lfw_pairs
    from utils.fileio import check_output_file, write_json_atomic
    from utils.plots import check_figure_file

    if args.report:
        check_output_file(args.report, "--report")
    if args.roc:
        check_figure_file(args.roc, "--roc")
    pairs, n_missing = load_lfw_pairs(args.pairs, args.lfw_dir, args.skip_missing, args.folds)
    if args.update_card:
        check_card_pairs(pairs, args.pairs)
    from facenet import Facenet
    from utils.plots import plot_roc

    predictor = Facenet(model_path=args.model_path, backbone=args.backbone,
                        preprocessing=args.preprocessing, crop=args.crop,
                        batch_size=args.batch_size, precision=args.precision,
                        engine=args.engine,
                        align="auto" if args.align else "off",
                        align_margin=args.align_margin, align_choice="central",
                        align_cache=(False if args.align_cache == "none"
                                     else args.align_cache or True))
    card = card_to_update(predictor) if args.update_card else None
    report = evaluate_pairs(predictor, pairs, flip=args.flip, progress=not args.no_progress,
                            far_target=args.far)
    report["missing_images"] = n_missing
    print(format_report(report))
    roc = report.pop("roc")
    for key in ("distances", "same"):  # per-pair arrays: not for the JSON report
        report.pop(key)
    report.update(model_path=predictor.model_path, crop=args.crop,
                  precision=predictor.precision, engine=predictor.engine, lfw_dir=args.lfw_dir,
                  pairs_file=args.pairs)
    if args.report:
        write_json_atomic(args.report, report)
        print(f"Report: {args.report}")
    if args.update_card:
        given = argv if argv is not None else sys.argv[1:]
        command = "python eval_lfw.py " + " ".join(  # what was measured, not how loudly
            a for a in given if a not in ("--quiet", "--verbose"))
        update_card(predictor, card, report, command)
        print(f"Card updated: threshold {report['threshold_mean']:.4f}")
    if args.roc and roc is None:  # the optional figure last, once the results are saved
        print(f"ROC curve: none ({report['undefined']['auc']})")
    elif args.roc:
        try:
            plot_roc(roc["fpr"], roc["tpr"], report["auc"], args.roc,
                     title=f"LFW ROC, {os.path.basename(predictor.model_path)}")
        except (OSError, ValueError) as e:
            raise FacenetError(f"--roc {args.roc}: the figure was not saved ({e}); the results "
                               f"above were") from None
        print(f"ROC curve: {args.roc}")
    return report

if __name__ == "__main__":
    main()
