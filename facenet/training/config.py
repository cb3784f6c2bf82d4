"""Training settings: every constant of the original train.py with its default, and the checks
that reject impossible ones before anything is built."""
import dataclasses

from utils.choices import BACKBONES, LR_DECAY_TYPES, OPTIMIZERS
from utils.errors import SettingError


@dataclasses.dataclass
class TrainConfig:
    """Every constant at the top of the original train.py, with its default."""
    annotation_path: str = "cls_train.txt"
    backbone: str = "mobilenet"
    model_path: str = ""
    input_shape: tuple = (160, 160, 3)
    init_epoch: int = 0
    epochs: int = 100
    batch_size: int = 96
    init_lr: float = 1e-3
    min_lr: float = None  # None: init_lr * 0.01
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay_type: str = "cos"
    save_period: int = 1
    save_dir: str = "logs"
    keep_checkpoints: int = None  # newest per-epoch files kept; 0 = all (the original); None:
    #                               0, or with resume the run's own
    num_workers: int = 0  # tf.data decodes in parallel (AUTOTUNE); kept for the original's option
    lfw_eval: bool = True
    lfw_dir: str = "lfw"
    lfw_pairs: str = "model_data/lfw_pair.txt"
    lfw_folds: str = ""  # the official folds to score, counted from 1 ("1", "2-10"); "": all
    lfw_crop: str = "none"
    crop: str = "none"  # face box of the training images, e.g. "lfw" for 250x250 LFW images
    crop_jitter: float = 0.0  # random sub-box of the face box, side down to 1 - this; 0 = original
    val_split: float = 0.01
    seed: int = 0
    patience: int = 10
    preprocessing: str = None  # None: the pretrained card's when starting from it, else scale01
    skip_missing: bool = False  # train without annotation lines whose image is gone
    precise_bn_batches: int = 20  # re-estimate BatchNorm statistics each epoch; 0 = original
    resume: str = ""
    strategy: str = "auto"  # auto | single | mirrored | multiworker: facenet/training/distribute.py
    verbose: int = 1


def check_config(cfg):
    """Reject impossible settings before anything is built, naming the allowed values."""
    from utils.lfw import parse_folds

    if cfg.lfw_folds:
        parse_folds(cfg.lfw_folds)
    from nets.facenet import check_input_shape
    from facenet.training.data import check_batch_size

    if cfg.backbone not in BACKBONES:
        raise SettingError(f"unknown backbone {cfg.backbone!r}; choose one of {list(BACKBONES)}")
    if cfg.optimizer not in OPTIMIZERS:
        raise SettingError(f"unknown optimizer {cfg.optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if cfg.lr_decay_type not in LR_DECAY_TYPES:
        raise SettingError(f"unknown lr_decay_type {cfg.lr_decay_type!r}; "
                           f"choose one of {list(LR_DECAY_TYPES)}")
    check_batch_size(cfg.batch_size)
    check_input_shape(tuple(cfg.input_shape), cfg.backbone)
    if cfg.init_lr <= 0 or (cfg.min_lr is not None and cfg.min_lr <= 0):
        raise SettingError(f"learning rates must be positive, got init_lr={cfg.init_lr}, "
                           f"min_lr={cfg.min_lr}")
    if not 0 <= cfg.init_epoch < cfg.epochs:
        raise SettingError(f"need 0 <= init_epoch < epochs, got {cfg.init_epoch} and {cfg.epochs}")
    if not 0 <= cfg.val_split < 1:
        raise SettingError(f"val_split must be in [0, 1), got {cfg.val_split}")
    if cfg.save_period < 1:
        raise SettingError(f"save_period must be at least 1, got {cfg.save_period}")
    if cfg.keep_checkpoints is not None and cfg.keep_checkpoints < 0:
        raise SettingError(f"keep_checkpoints must be 0 (keep all) or more, got "
                           f"{cfg.keep_checkpoints}")
