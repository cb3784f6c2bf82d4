"""Training settings: the original's defaults, and every impossible setting refused by
check_config with the field and the value named, before anything is built."""
import dataclasses

import pytest

from facenet.training.config import TrainConfig, check_config
from utils.errors import SettingError


def test_the_defaults_are_the_originals():
    cfg = TrainConfig()
    assert (cfg.backbone, cfg.input_shape, cfg.epochs, cfg.batch_size) == (
        "mobilenet", (160, 160, 3), 100, 96)
    assert (cfg.init_lr, cfg.optimizer, cfg.momentum, cfg.lr_decay_type) == (
        1e-3, "adam", 0.9, "cos")
    assert (cfg.save_period, cfg.save_dir, cfg.val_split, cfg.lfw_eval) == (1, "logs", 0.01, True)
    check_config(cfg)


def test_a_config_round_trips_through_its_saved_form():
    """The resume state keeps the settings as a dict: every field comes back."""
    cfg = TrainConfig(backbone="inception_resnetv1", epochs=7, crop="lfw")
    assert TrainConfig(**dataclasses.asdict(cfg)) == cfg


@pytest.mark.parametrize("field,value,message", [
    ("batch_size", 10, "batch_size must be a positive multiple of 3"),
    ("batch_size", 0, "batch_size must be a positive multiple of 3"),
    ("init_lr", 0.0, "learning rates must be positive"),
    ("min_lr", -1e-5, "learning rates must be positive"),
    ("epochs", 0, "need 0 <= init_epoch < epochs, got 0 and 0"),
    ("init_epoch", 100, "need 0 <= init_epoch < epochs, got 100 and 100"),
    ("val_split", 1.0, "val_split must be in \\[0, 1\\), got 1.0"),
    ("save_period", 0, "save_period must be at least 1, got 0"),
    ("backbone", "resnet", "unknown backbone 'resnet'"),
    ("input_shape", (64, 64, 3), "at least 75"),  # with inception_resnetv1 below
])
def test_impossible_settings_are_named(field, value, message):
    settings = {field: value}
    if field == "input_shape":
        settings["backbone"] = "inception_resnetv1"
    with pytest.raises(SettingError, match=message):
        check_config(TrainConfig(**settings))


def test_the_smallest_sound_run_passes():
    check_config(TrainConfig(batch_size=3, epochs=1, val_split=0.0, input_shape=(32, 32, 3)))
