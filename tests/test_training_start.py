"""The start of a training run: a failed start leaves no run folder behind."""
import os

import pytest

from facenet.training import TrainConfig, train
from test_crashes import make_dataset
from utils.errors import FacenetError

TINY = dict(input_shape=(32, 32, 3), batch_size=6, lfw_eval=False, precise_bn_batches=1,
            verbose=0)


@pytest.fixture(scope="module")
def annotation(tmp_path_factory):
    """10 people with 6 images each: 60 lines."""
    return make_dataset(tmp_path_factory.mktemp("tiny") / "data")


def lines_with_a_missing_image(annotation, tmp_path):
    path = tmp_path / "missing.txt"
    path.write_text(open(annotation).read() + f"1;{tmp_path / 'gone.png'}\n")
    return str(path)


@pytest.mark.parametrize("problem", ["missing image", "batch above the data", "bad weights"])
def test_a_failed_start_leaves_no_run_folder(annotation, tmp_path, problem):
    save_dir = tmp_path / "logs"
    settings = {"missing image": dict(annotation_path=lines_with_a_missing_image(annotation,
                                                                                 tmp_path)),
                "batch above the data": dict(annotation_path=annotation, batch_size=96),
                # fails once the model is built, after the run folder was made: it goes again
                "bad weights": dict(annotation_path=annotation,
                                    model_path=str(tmp_path / "none.weights.h5"))}[problem]
    cfg = TrainConfig(**{**TINY, **settings, "save_dir": str(save_dir)})
    with pytest.raises(FacenetError):
        train(cfg, log=lambda *a: None)
    assert not save_dir.exists() or os.listdir(save_dir) == []
