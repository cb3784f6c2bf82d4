"""Training FaceNet, in one place. Importing it is cheap: TensorFlow loads when a run starts.

Where each part is:

- `config.py`: `TrainConfig` (every setting of the original train.py, same defaults) and
  `check_config`, which rejects impossible settings before anything is built.
- `data.py`: the annotation's lines (`load_lines`), the validation split (`split_lines`,
  `validation_plan`) and the triplet batches as a tf.data pipeline (`triplet_dataset`).
- `loop.py`: `train` (start or resume a run), `build_model`, `make_lfw_eval` (the LFW check per
  epoch), `add_weight_decay`, and the fit.
- `callbacks.py`: `EpochRecorder` (what each epoch's end writes and decides) and
  `PreciseBatchNorm` (BatchNorm statistics of the current weights).
- `checkpoints.py`: weight files with their cards, the resume state (save, find, restore),
  the loss history and plot, and the run folder's checks and clean-up.
- `distribute.py`: which tf.distribute strategy trains, and what multi-worker `fit` needs.
- `distillation.py`: `train.py --teacher`, a student learning a teacher's embeddings;
  `augment.py`: the augmented views it trains on.

The maths the network side owns stays in nets/: the triplet loss in `nets/losses.py`, the
learning-rate fit and schedules in `nets/schedules.py`; this package imports them from there.
"""
from facenet.training.config import TrainConfig
from facenet.training.loop import train

__all__ = ["TrainConfig", "train"]
