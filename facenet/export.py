"""Export a FaceNet for serving: SavedModel, TFLite (float32, float16, int8), ONNX (float32, int8).

    python -m facenet.export --format savedmodel [--model-path W] [--out DIR]
    python -m facenet.export --format tflite --quantize float16
    python -m facenet.export --format onnx [--quantize int8]   # the model the ONNX engine runs
    python -m facenet.export --format savedmodel --out DIR --overwrite   # replace an export

Every export takes uint8 RGB images at the model's input size (N, H, W, 3) and returns
L2-normalised embeddings, with the model card's preprocessing inside, so a deployment needs
no Python code of this project. The model card is written beside each export. An existing
export is replaced only with --overwrite; a model's own weights and card never are.
"""
import argparse
import logging
import os
import sys

from facenet.cli import add_logging_options, add_model_options, configure_logging
from utils.errors import FacenetError, SettingError, cli_errors
from utils.fileio import nearest_existing

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("float32", "float16", "int8")

logger = logging.getLogger(__name__)


def export_savedmodel(predictor, out_dir):
    """A SavedModel whose `serving_default` maps uint8 images to embeddings.

    The module tracks the model's own tf.Variables only: tracking the Keras model (as
    keras.export.ExportArchive does) stores every weight twice, doubling the file."""
    import tensorflow as tf

    from utils.tf_preprocessing import preprocess_tf

    h, w, c = predictor.input_shape
    # the network the predictor runs: BatchNorms folded into the convolutions, when it folds
    model, preprocessing = predictor.inference_model, predictor.preprocessing

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model_variables = [getattr(v, "value", v) for v in model.variables]

        @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.uint8, name="images")])
        def serve(self, images):
            x = preprocess_tf(images, preprocessing)
            return {"embeddings": model(x, training=False)}

    module = Serving()
    tf.saved_model.save(module, out_dir, signatures={"serving_default": module.serve})
    return out_dir


def export_tflite(savedmodel_dir, out_path, quantize="float32"):
    """Convert the SavedModel: float32, float16 weights, or dynamic-range int8 weights."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise SettingError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(savedmodel_dir)
    if quantize in ("float16", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    data = converter.convert()
    from utils.fileio import atomic_path

    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return out_path


ONNX_QUANTIZATIONS = ("float32", "int8")


def export_onnx(predictor, out_path, quantize="float32"):
    """The ONNX model the ONNX engine runs (facenet/onnx_build.py writes it from the weights:
    no converter, no TensorFlow): float32, or int8 from the model's shipped calibration table."""
    from facenet import engine

    if quantize not in ONNX_QUANTIZATIONS:
        raise SettingError(f"ONNX exports are {' or '.join(ONNX_QUANTIZATIONS)}, not "
                           f"{quantize!r}")
    if getattr(predictor, "engine", None) == "onnx" and predictor.precision == quantize:
        with open(predictor.onnx_path, "rb") as f:  # made and checked by the predictor
            data = f.read()
    elif quantize == "float32":
        data = engine.build_onnx(predictor.inference_model, predictor.preprocessing, "float32")
    else:
        raise SettingError("an int8 ONNX export needs a predictor on the ONNX engine in int8: "
                           "Facenet(engine='onnx', precision='int8')")
    return engine.save_model(data, out_path)


def card_path(out, fmt):
    """Where an export's card goes: inside a SavedModel folder, else beside the file."""
    if fmt == "savedmodel":
        return os.path.join(out, "card.json")
    return os.path.splitext(out)[0] + ".json"


def protected_paths(model_path=None):
    """Files no export may replace, even with overwrite: each registered model's weights and
    card (a replaced card makes the next start fetch 90 MB again), and the exported model's."""
    from facenet import weights as registry

    files = [registry.weights_path(name, registry.MODEL_DATA) for name in registry.MODELS]
    files += [os.fspath(model_path)] if model_path else []
    return {os.path.realpath(p) for f in files for p in (f, registry.card_path_for(f))}


def check_out(out, fmt, overwrite=False, model_path=None):
    """Refuse, before any work, an `out` that cannot be written, would replace a model's own
    files, or would replace anything unasked: one FacenetError that says what to do."""
    out = os.fspath(out)
    card = card_path(out, fmt)
    folder = nearest_existing(out)
    if not os.path.isdir(folder):
        raise FacenetError(f"cannot export to {out}: {folder} is a file, not a folder; "
                           f"choose another --out")
    protected = protected_paths(model_path)
    for target in (out, card):
        if os.path.realpath(target) in protected:
            raise FacenetError(f"refusing to write {target}: it is a model's own weights or "
                               f"card, kept even with --overwrite; choose another --out")
    if card == out:
        raise FacenetError(f"--out {out} would be replaced by its card; name it *.{fmt}")
    kind = "folder" if os.path.isdir(out) else "file"
    want = "folder" if fmt == "savedmodel" else "file"
    if os.path.exists(out) and kind != want:
        raise FacenetError(f"{out} is a {kind}; a {fmt} export is a {want}: choose another --out")
    if overwrite:
        return
    if want == "folder" and os.path.isdir(out) and os.listdir(out):
        raise FacenetError(f"{out} is a folder that is not empty; pass --overwrite to write "
                           f"into it, or choose another --out")
    for target in (out, card):
        if os.path.isfile(target):
            raise FacenetError(f"{target} exists; pass --overwrite to replace it, or choose "
                               f"another --out")


def write_card(predictor, path, fmt, quantize=None):
    from utils.fileio import write_json_atomic

    card = dict(predictor.card or {"backbone": predictor.backbone,
                                   "input_shape": list(predictor.input_shape),
                                   "preprocessing": predictor.preprocessing,
                                   "threshold": predictor.threshold})
    card["export"] = {"format": fmt, "quantize": quantize, "input": "uint8 RGB (N, H, W, 3)",
                      "output": "L2-normalised embeddings", "preprocessing_inside": True,
                      "from_weights": os.path.basename(str(predictor.model_path))}
    path = card_path(path, fmt)
    write_json_atomic(path, card)
    return path


def export(predictor, fmt, out, quantize="float32", overwrite=False):
    """Export `predictor`'s model; returns the written path. An existing `out` (or its card)
    is replaced only with overwrite=True; a model's own weights and card never are."""
    import tempfile

    if fmt not in FORMATS:
        raise SettingError(f"format must be one of {FORMATS}, got {fmt!r}")
    check_out(out, fmt, overwrite, getattr(predictor, "model_path", None))
    logger.debug(f"exporting {fmt} to {out}")
    if fmt == "savedmodel":
        path = export_savedmodel(predictor, out)
    elif fmt == "onnx":
        path = export_onnx(predictor, out, quantize)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            saved = export_savedmodel(predictor, os.path.join(tmp, "savedmodel"))
            path = export_tflite(saved, out, quantize)
    write_card(predictor, path, fmt, None if fmt == "savedmodel" else quantize)
    return path


def default_out(model_path, fmt, quantize):
    """model_data/export/<the weight file's name>_<format>: known before the model loads."""
    stem = os.path.join("model_data", "export", os.path.basename(str(model_path)).split(".")[0])
    return {"savedmodel": stem + "_savedmodel", "tflite": f"{stem}_{quantize}.tflite",
            "onnx": stem + ("_int8" if quantize == "int8" else "") + ".onnx"}[fmt]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m facenet.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--quantize", default="float32", choices=QUANTIZATIONS,
                   help="TFLite: float32, float16 or dynamic-range int8 weights; ONNX: float32, "
                        "or static int8 from the model's calibration table")
    add_model_options(p, preprocessing=False)
    p.add_argument("--out", default=None, help="default: model_data/export/<name>_<format>")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing export (never a model's own weights or card)")
    add_logging_options(p)
    args = p.parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():
        # before the model loads: a refusal should not take a minute
        from facenet import weights as registry

        model_path = args.model_path or registry.weights_path(
            registry.default_model(args.backbone))
        out = args.out or default_out(model_path, args.format, args.quantize)
        check_out(out, args.format, args.overwrite, args.model_path)
        if args.format == "onnx" and args.quantize not in ONNX_QUANTIZATIONS:
            raise SettingError(f"ONNX exports are {' or '.join(ONNX_QUANTIZATIONS)}, not "
                               f"--quantize {args.quantize}")
        from facenet import Facenet

        # float32 unless a quantized export is asked for, whatever auto picks on this machine
        onnx = args.format == "onnx"
        predictor = Facenet(model_path=args.model_path, backbone=args.backbone, align="off",
                            precision=args.quantize if onnx else "float32",
                            engine="onnx" if onnx else "keras")
        path = export(predictor, args.format, out, args.quantize, overwrite=args.overwrite)
        quantized = "" if args.format == "savedmodel" else f" {args.quantize}"
        print(f"Exported {args.format}{quantized}: {path} "
              f"(card {card_path(path, args.format)})")


if __name__ == "__main__":
    main()
