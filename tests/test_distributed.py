"""Training under tf.distribute: MirroredStrategy equals one device; two workers on 127.0.0.1."""
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, run_script


@pytest.mark.slow
def test_mirrored_matches_one_device(tmp_path):
    """Two logical CPUs under MirroredStrategy against the same steps on one device."""
    out = tmp_path / "mirrored.json"
    r = run_script(["-m", "tests.distributed_check", "mirrored", str(out)], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.load(open(out))
    assert got["max_weight_change"] > 1e-3  # the step did move the weights ...
    assert got["max_weight_difference"] < 1e-5  # ... and both paths moved them alike
    for a, b in zip(got["mirrored_losses"], got["single_losses"]):
        assert a == pytest.approx(b, rel=1e-4)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture()
def small_set(lfw, tmp_path):
    """An annotation file of 8 LFW people with 4+ images each."""
    lfw_dir, _ = lfw
    people = [p for p in sorted(os.listdir(lfw_dir)) if os.path.isdir(os.path.join(lfw_dir, p))
              and len(os.listdir(os.path.join(lfw_dir, p))) >= 4][:8]
    lines = []
    for label, person in enumerate(people):
        for f in sorted(os.listdir(os.path.join(lfw_dir, person)))[:4]:
            lines.append(f"{label};{os.path.abspath(os.path.join(lfw_dir, person, f))}")
    path = tmp_path / "cls_train.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_workers(extra, small_set, tmp_path):
    """Start train.py as two workers of one cluster on 127.0.0.1; return their outputs."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        save = tmp_path / f"save{index}"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "train.py", "--annotation-path", small_set, "--backbone",
             "mobilenet", "--input-shape", "32", "32", "3", "--batch-size", "12",
             "--no-lfw-eval", "--precise-bn-batches", "1", "--val-split", "0.2",
             "--save-dir", str(save), "--strategy", "multiworker", "--no-progress", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        outputs.append(out)
        assert proc.returncode == 0, out[-3000:]
    return outputs


@pytest.mark.slow
def test_two_workers_train_resume_and_only_the_chief_writes(small_set, tmp_path):
    outputs = run_workers(["--epochs", "1"], small_set, tmp_path)
    assert all("MultiWorkerMirroredStrategy: 2 replicas" in o for o in outputs)
    chief_runs = list((tmp_path / "save0").glob("loss_*"))
    assert len(chief_runs) == 1
    run = chief_runs[0]
    assert (run / "last_epoch_weights.weights.h5").exists()
    assert list(run.glob("ep001-loss*.weights.h5"))
    assert not (tmp_path / "save1").exists()  # the other worker wrote nothing
    # every epoch log (loss, val_loss and each output's) is the cluster-wide mean, the same on
    # both workers: what non-chief early stopping relies on (facenet/training/distribute.py)
    losses = [re.findall(r"loss: ([0-9.]+)", o) for o in outputs]
    assert len(losses[0]) >= 2 and losses[0] == losses[1]
    # both resume from the chief's run folder for a second epoch
    outputs = run_workers(["--resume", str(run), "--epochs", "2"], small_set, tmp_path)
    assert all("Resuming" in o and "at epoch 2 of 2" in o for o in outputs)
    assert list(run.glob("ep002-loss*.weights.h5"))
    history = (run / "epoch_loss.txt").read_text().split()
    assert len(history) == 2
    assert not (tmp_path / "save1").exists()
