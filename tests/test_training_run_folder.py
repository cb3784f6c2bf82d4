"""A run owns its folder: two runs started in the same second with one --save-dir used to
write one loss_<time>/ folder, each overwriting the other's checkpoints and history."""
import datetime
import os
import threading
from types import SimpleNamespace

FROZEN = datetime.datetime(2026, 1, 2, 3, 4, 5)


class FrozenClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FROZEN


def test_two_runs_started_in_one_second_get_two_folders(tmp_path, monkeypatch):
    from facenet.training import TrainConfig, loop

    monkeypatch.setattr(loop, "datetime", SimpleNamespace(datetime=FrozenClock), raising=False)
    monkeypatch.setattr("datetime.datetime", FrozenClock, raising=False)
    gate = threading.Barrier(2)

    def fake_train(cfg, run_dir, *rest):  # what a run writes into its folder
        with open(os.path.join(run_dir, "owner.txt"), "x") as f:
            f.write(threading.current_thread().name)
        gate.wait(timeout=30)  # both runs are inside their folders at once
        return {"loss": []}, None

    monkeypatch.setattr(loop, "_train", fake_train)
    cfg = dict(save_dir=str(tmp_path / "logs"), strategy="single", verbose=0)
    folders, errors = [], []

    def run():
        try:
            folders.append(loop.train(TrainConfig(**cfg))[0])
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(e))
            gate.abort()

    threads = [threading.Thread(target=run, name=f"run{k}") for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(folders)) == 2, (errors, folders)
    assert sorted(os.listdir(tmp_path / "logs")) == ["loss_2026_01_02_03_04_05",
                                                     "loss_2026_01_02_03_04_05_2"]
    owners = {open(os.path.join(f, "owner.txt")).read() for f in folders}
    assert owners == {"run0", "run1"}


def test_make_run_dir_never_reuses_a_folder(tmp_path, monkeypatch):
    from facenet.training.checkpoints import make_run_dir

    monkeypatch.setattr("datetime.datetime", FrozenClock, raising=False)
    made = [make_run_dir(str(tmp_path), "distill") for _ in range(3)]
    assert [os.path.basename(m) for m in made] == [
        "distill_2026_01_02_03_04_05", "distill_2026_01_02_03_04_05_2",
        "distill_2026_01_02_03_04_05_3"]


def test_runs_checking_one_save_folder_at_once_do_not_fail_each_other(tmp_path):
    """Before: every run probed the folder with the same file name, so one run's clean-up
    removed the other's probe and that run stopped with "cannot write to the save folder"."""
    from facenet.training.checkpoints import check_writable

    errors = []

    def probe():
        for _ in range(300):
            try:
                check_writable(str(tmp_path))
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=probe) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and os.listdir(tmp_path) == []  # and no probe left behind
