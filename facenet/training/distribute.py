"""Which tf.distribute strategy trains, and what it needs from Keras 3.

- "single": the default strategy (one device).
- "mirrored": MirroredStrategy over the visible GPUs, or over the logical CPUs when there is
  no GPU and the CPU was split (tests do that).
- "multiworker": MultiWorkerMirroredStrategy across the machines named in TF_CONFIG.
- "auto": multiworker when TF_CONFIG names several workers, mirrored with several GPUs, else
  single.

Keras 3's `fit` does not run under MultiWorkerMirroredStrategy as released (keras-team/keras
issue 20585): it builds the model by all-reducing a whole data batch across workers, and reduces
scalar logs along an axis they lack. `prepare_multiworker_fit` works around both, for one model
and one `fit` (the private Keras names it touches live in nets/keras_shims.py).
"""
import json
import logging
import os

from utils.choices import STRATEGIES
from utils.errors import FacenetError, SettingError

logger = logging.getLogger(__name__)


def tf_config():
    """The parsed TF_CONFIG, or None."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise FacenetError(f"TF_CONFIG is not valid JSON ({e}): {raw[:200]}") from None


def cluster_workers():
    cfg = tf_config() or {}
    cluster = cfg.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def pick_strategy(name="auto"):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise SettingError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto" and cluster_workers() > 1:
        name = "multiworker"
    if name == "multiworker":  # before anything else touches TensorFlow's runtime
        return _multiworker()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "single"
    if name == "single":
        logger.debug("Training on one device (the default strategy).")
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in (gpus or cpus)]
        logger.info(f"Training on {len(devices)} devices with MirroredStrategy: "
                    f"{', '.join(devices)}")
        return tf.distribute.MirroredStrategy(devices)


def _multiworker():
    import tensorflow as tf

    if cluster_workers() < 1:
        raise FacenetError("--strategy multiworker needs TF_CONFIG naming the cluster's workers "
                           "and this process's task (see docs/distributed.md)")
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    logger.info(f"Training with MultiWorkerMirroredStrategy: {strategy.num_replicas_in_sync} "
                f"replicas, this is task {task_index()} "
                f"({'chief' if is_chief() else 'worker'}).")
    return strategy


def task_index():
    return int(((tf_config() or {}).get("task") or {}).get("index", 0))


def is_chief():
    """True for the process that writes checkpoints: the chief, else worker 0, else alone."""
    task = (tf_config() or {}).get("task") or {}
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    has_chief = bool((tf_config() or {}).get("cluster", {}).get("chief"))
    return task.get("type") == "worker" and task.get("index", 0) == 0 and not has_chief


def prepare_multiworker_fit(model, strategy, get_sample_batch):
    """Let `model.fit` run under MultiWorkerMirroredStrategy (see the module docstring);
    `get_sample_batch()` gives one local batch to build the model's training state from.
    Returns the patches made: `with prepare_multiworker_fit(...): model.fit(...)` undoes them.

    Logs: within an epoch each step's are this worker's own; the epoch's (loss, val_loss, what
    callbacks get) are read from Keras's metric variables, which sum across workers on read, so
    every worker gets the same cluster-wide means (tests/test_distributed.py) and non-chief
    early stopping decides as the chief's does. Gradients are all-reduced as ever."""
    import tensorflow as tf

    from nets import keras_shims

    patches = keras_shims.Patches()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return patches
    try:
        keras_shims.build_from_local_batch(patches, model, strategy, get_sample_batch())
        keras_shims.reduce_logs_per_worker(patches)
    except BaseException:
        patches.close()
        raise
    return patches
