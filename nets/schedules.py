"""Learning rates of the original, by its formulas (docs/design.md#training-math): the rate fitted
to the batch size, and the schedules over epochs."""
import math

from utils.choices import LR_DECAY_TYPES
from utils.errors import SettingError

NOMINAL_BATCH = 64  # nbs: the batch size the base learning rates are meant for
LR_LIMITS = {"adam": (3e-4, 1e-3), "sgd": (5e-4, 1e-1)}  # per utils.choices.OPTIMIZERS


def fit_learning_rates(batch_size, init_lr, min_lr, optimizer="adam"):
    """(Init_lr_fit, Min_lr_fit): the base rates scaled by batch/64 and clipped to the
    optimizer's limits."""
    (init_low, init_high), (min_low, min_high) = _fit_ranges(optimizer)
    init_fit = min(max(batch_size / NOMINAL_BATCH * init_lr, init_low), init_high)
    min_fit = min(max(batch_size / NOMINAL_BATCH * min_lr, min_low), min_high)
    return init_fit, min_fit


def _fit_ranges(optimizer):
    """The ranges the batch-scaled init and min rates are clipped to (min: 1% of init's)."""
    if optimizer not in LR_LIMITS:
        raise SettingError(f"unknown optimizer {optimizer!r}; choose one of {sorted(LR_LIMITS)}")
    low, high = LR_LIMITS[optimizer]
    return (low, high), (low * 1e-2, high * 1e-2)


def lr_fit_notes(batch_size, init_lr, min_lr, optimizer="adam"):
    """One line for each base rate whose batch-scaled value the optimizer's limits changed.

    The original clips silently, so `--min-lr 1e-4` with Adam ends at 1e-5 however it is
    asked; these lines say so in the training log."""
    scale = batch_size / NOMINAL_BATCH
    fitted_rates = fit_learning_rates(batch_size, init_lr, min_lr, optimizer)
    notes = []
    for name, base, fitted, (lo, hi) in zip(("init-lr", "min-lr"), (init_lr, min_lr),
                                            fitted_rates, _fit_ranges(optimizer)):
        if not math.isclose(base * scale, fitted, rel_tol=1e-9):
            notes.append(f"--{name} {base:g} x batch {batch_size}/{NOMINAL_BATCH} = "
                         f"{base * scale:.3g} is outside {optimizer}'s range [{lo:g}, {hi:g}] "
                         f"of the original's batch fit; using {fitted:.3g}")
    return notes


def get_lr_scheduler(lr_decay_type, lr, min_lr, total_iters, warmup_iters_ratio=0.1,
                     warmup_lr_ratio=0.1, no_aug_iter_ratio=0.3, step_num=10):
    """A function epoch -> learning rate ("cos": warm-up, cosine, flat tail; "step": 10 steps)."""
    if lr_decay_type == "cos":
        warmup_total = min(max(warmup_iters_ratio * total_iters, 1), 3)
        warmup_start = max(warmup_lr_ratio * lr, 1e-6)
        no_aug = min(max(no_aug_iter_ratio * total_iters, 1), 15)

        def schedule(iters):
            if iters <= warmup_total:
                return (lr - warmup_start) * (iters / float(warmup_total)) ** 2 + warmup_start
            if iters >= total_iters - no_aug:
                return min_lr
            return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(
                math.pi * (iters - warmup_total) / (total_iters - warmup_total - no_aug)))

        return schedule
    if lr_decay_type == "step":
        decay_rate = (min_lr / lr) ** (1 / (step_num - 1))
        step_size = total_iters / step_num

        def schedule(iters):
            return lr * decay_rate ** (iters // step_size)

        return schedule
    raise SettingError(f"unknown lr_decay_type {lr_decay_type!r}; "
                       f"choose one of {list(LR_DECAY_TYPES)}")
