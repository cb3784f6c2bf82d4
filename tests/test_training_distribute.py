"""Reading TF_CONFIG: the cluster's size, this process's task, who writes the run folder, and a
strategy that cannot run named before TensorFlow starts one (the clusters themselves run in
test_distributed.py)."""
import json

import pytest

from facenet.training import distribute
from utils.errors import FacenetError


def set_config(monkeypatch, config):
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


CLUSTER = {"worker": ["h1:1", "h2:1"], "chief": ["h0:1"]}


def test_no_tf_config_is_one_process_that_writes(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.tf_config() is None and distribute.cluster_workers() == 0
    assert distribute.is_chief() and distribute.task_index() == 0


def test_bad_json_is_one_error_quoting_it(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{cluster: }")
    with pytest.raises(FacenetError, match="TF_CONFIG is not valid JSON .*: {cluster: }"):
        distribute.cluster_workers()


@pytest.mark.parametrize("task,chief", [({"type": "chief", "index": 0}, True),
                                        ({"type": "worker", "index": 0}, False),
                                        ({"type": "worker", "index": 1}, False)])
def test_the_chief_writes_when_there_is_one(monkeypatch, task, chief):
    set_config(monkeypatch, {"cluster": CLUSTER, "task": task})
    assert distribute.cluster_workers() == 3 and distribute.is_chief() is chief
    assert distribute.task_index() == task["index"]


@pytest.mark.parametrize("index,chief", [(0, True), (1, False)])
def test_without_a_chief_worker_0_writes(monkeypatch, index, chief):
    set_config(monkeypatch, {"cluster": {"worker": CLUSTER["worker"]},
                             "task": {"type": "worker", "index": index}})
    assert distribute.is_chief() is chief


def test_multiworker_without_a_cluster_says_what_it_needs(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(FacenetError, match="--strategy multiworker needs TF_CONFIG.*see "
                                           "docs/distributed.md"):
        distribute.pick_strategy("multiworker")
