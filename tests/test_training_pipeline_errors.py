"""An error of the library raised inside tf.data's Python functions reaches the caller as
itself, in one line, not as the tf.data traceback that wraps it."""
import pytest

from utils.errors import ImageLoadError


def test_a_training_set_whose_images_all_fail_ends_in_the_librarys_error(tmp_path,
                                                                        monkeypatch):
    """The run's fit is replaced by what fails in it: reading a batch of the training set,
    whose images all fail to decode (a model would only make the test slower)."""
    from facenet.training import TrainConfig, loop
    from facenet.training.data import triplet_dataset

    paths = []
    for label in range(2):
        for i in range(3):
            paths.append(str(tmp_path / f"p{label}_{i}.jpg"))
            (tmp_path / f"p{label}_{i}.jpg").write_bytes(b"not a jpeg at all")
    labels = [0, 0, 0, 1, 1, 1]

    def fit_reads_a_batch(*args):
        ds = triplet_dataset(paths, labels, 2, (64, 64, 3), 3, 1, 1, augment=False)
        next(iter(ds))

    monkeypatch.setattr(loop, "_train", fit_reads_a_batch)
    cfg = TrainConfig(save_dir=str(tmp_path / "logs"), strategy="single", verbose=0)
    with pytest.raises(ImageLoadError, match="no readable image left for class") as e:
        loop.train(cfg)
    assert e.type is ImageLoadError and "Traceback" not in str(e.value)
    assert list((tmp_path / "logs").iterdir()) == []  # the failed start left no run folder


def test_other_tensorflow_errors_pass_unchanged():
    import tensorflow as tf

    from facenet.training.data import pipeline_errors

    with pytest.raises(tf.errors.InvalidArgumentError):
        with pipeline_errors():
            tf.debugging.assert_equal(1, 2)
