"""The names the scripts offer (utils/choices.py) are exactly the names the library acts on."""
import pytest

from utils import choices


def test_each_backbone_is_built_and_has_a_smallest_input():
    from nets import facenet

    assert tuple(facenet.BACKBONES) == choices.BACKBONES
    assert tuple(facenet.MIN_INPUT_SIDE) == choices.BACKBONES
    assert facenet.MODES is choices.MODES


def test_each_preprocessing_has_its_numpy_transform():
    from utils.image import PREPROCESSING, get_preprocessing

    assert tuple(PREPROCESSING) == choices.PREPROCESSINGS
    with pytest.raises(ValueError, match="scale01"):
        get_preprocessing("x/127.5-1")


def test_each_optimizer_has_learning_rate_ranges_and_each_schedule_runs():
    from nets.schedules import LR_LIMITS, fit_learning_rates, get_lr_scheduler

    assert tuple(LR_LIMITS) == choices.OPTIMIZERS
    for optimizer in choices.OPTIMIZERS:
        assert fit_learning_rates(96, 1e-3, 1e-5, optimizer)[0] > 0
    for kind in choices.LR_DECAY_TYPES:
        assert get_lr_scheduler(kind, 1e-3, 1e-5, 10)(0) > 0


def test_training_settings_are_checked_against_the_same_names():
    from facenet.training.config import TrainConfig, check_config

    for backbone in choices.BACKBONES:
        for optimizer in choices.OPTIMIZERS:
            for kind in choices.LR_DECAY_TYPES:
                check_config(TrainConfig(backbone=backbone, optimizer=optimizer,
                                         lr_decay_type=kind))
    for field, listed in (("backbone", "inception_resnetv1"), ("optimizer", "sgd"),
                          ("lr_decay_type", "step")):
        with pytest.raises(ValueError, match=listed):
            check_config(TrainConfig(**{field: "other"}))


def test_model_cards_accept_exactly_these_names():
    from facenet.weights import check_card
    from utils.errors import WeightFileError

    for backbone in choices.BACKBONES:
        for preprocessing in choices.PREPROCESSINGS:
            check_card({"backbone": backbone, "preprocessing": preprocessing}, "m.json")
    with pytest.raises(WeightFileError, match="one of \\['mobilenet', 'inception_resnetv1'\\]"):
        check_card({"backbone": "resnet50"}, "m.json")


def test_precisions_and_strategies_are_the_ones_checked():
    from facenet.training import distribute
    from utils import precision

    assert precision.PRECISIONS is choices.PRECISIONS
    assert distribute.STRATEGIES is choices.STRATEGIES
    for name in ("float32", "bfloat16"):
        assert precision.resolve_precision(name, "mobilenet") == name
    with pytest.raises(ValueError, match="auto"):
        precision.resolve_precision("float16", "mobilenet")
    with pytest.raises(ValueError, match="multiworker"):
        distribute.pick_strategy("parameter_server")
