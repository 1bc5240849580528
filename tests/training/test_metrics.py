"""metrics.csv holds each epoch once, also after a run killed between checkpoints is resumed."""

import csv

import pytest

from s2robot.training import metrics as metrics_mod
from s2robot.training.metrics import MetricsLog
from s2robot.training.train import train


def _epochs(path):
    with open(path) as f:
        return [r["epoch"] for r in csv.DictReader(f)]


def test_resume_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    log = MetricsLog(path, ["epoch", "loss"])
    for e in range(1, 6):
        log.write({"epoch": e, "loss": 1.0 / e})
    log.close()
    log = MetricsLog(path, ["epoch", "loss"], resume_after=3)  # the checkpoint was at epoch 3
    log.write({"epoch": 4, "loss": 0.2})
    log.close()
    assert _epochs(path) == ["1", "2", "3", "4"]


def test_fresh_run_starts_a_fresh_log(tmp_path):
    path = tmp_path / "metrics.csv"
    for _ in range(2):
        log = MetricsLog(path, ["epoch"])
        log.write({"epoch": 1})
        log.close()
    assert _epochs(path) == ["1"]


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, as when the process dies."""


def test_training_killed_between_checkpoints_then_resumed_logs_each_epoch_once(tiny_cfg, tmp_path, monkeypatch):
    cfg = ["inputs=[proprio]", "train.epochs=4", "train.save_every=2"]
    real_write = MetricsLog.write

    def write_then_die_after_epoch_3(self, row, tb_step=None):
        real_write(self, row, tb_step)
        if row["epoch"] == 3:  # logged, but the next checkpoint (epoch 4) never comes
            raise _Killed

    monkeypatch.setattr(metrics_mod.MetricsLog, "write", write_then_die_after_epoch_3)
    with pytest.raises(_Killed):
        train(tiny_cfg(*cfg), tmp_path)
    monkeypatch.setattr(metrics_mod.MetricsLog, "write", real_write)
    assert _epochs(tmp_path / "metrics.csv") == ["1", "2", "3"]
    train(tiny_cfg(*cfg, "train.resume=true"), tmp_path)
    assert _epochs(tmp_path / "metrics.csv") == ["1", "2", "3", "4"]
