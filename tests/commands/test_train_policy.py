import logging

import pytest

from s2robot.config import register_configs
from s2robot.errors import ConfigError
from tests.commands import assert_one_line_error, run_cli
from tests.conftest import TINY, compose

register_configs()  # tests/conftest.py's compose needs the schemas in Hydra's ConfigStore


def test_misspelt_key_is_one_line_and_exit_2(tmp_path):
    proc = run_cli("train_policy.py", "train.epoch=1", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(proc, "train.epoch=1", "did you mean epochs?")
    assert not (tmp_path / "run").exists()  # refused while composing: Hydra made nothing


def test_refused_run_leaves_no_run_dir_but_keeps_a_used_one(tmp_path):
    # +key adds a key Hydra accepts; the schema walk refuses it after Hydra made the run dir
    proc = run_cli("train_policy.py", "+train.epoch=1", f"hydra.run.dir={tmp_path}/runs/new", cwd=tmp_path)
    assert_one_line_error(proc, "train.epoch", "did you mean epochs?")
    assert list(tmp_path.iterdir()) == []  # the run dir and the runs/ Hydra made for it are gone
    used = tmp_path / "used"
    used.mkdir()
    (used / "checkpoint.pt").write_bytes(b"keep")
    proc = run_cli("train_policy.py", "train.epochs=0", f"hydra.run.dir={used}", cwd=tmp_path)
    assert_one_line_error(proc, "train.epochs=0: must be >= 1")
    assert (used / "checkpoint.pt").read_bytes() == b"keep" and (used / ".hydra").is_dir()


def test_hydra_full_error_set_by_the_user_still_gives_the_traceback(tmp_path):
    proc = run_cli("train_policy.py", "train.epoch=1", f"hydra.run.dir={tmp_path}/run", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_missing_store_is_announced_and_collected_without_a_terminal(tmp_path, monkeypatch, caplog):
    from s2robot.commands.train_policy import confirm_collection

    cfg = compose([*TINY, f"data.store={tmp_path}/typo.zarr"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with caplog.at_level(logging.WARNING, logger="train_policy"):
        confirm_collection(cfg)
    assert f"data.store={tmp_path}/typo.zarr does not exist: collecting 4 expert demos" in caplog.text
    assert "Ctrl-C and fix the path" in caplog.text


@pytest.mark.parametrize("answer,refused", [("n", True), ("", True), ("y", False)])
def test_missing_store_asks_at_a_terminal(tmp_path, monkeypatch, answer, refused):
    from s2robot.commands.train_policy import confirm_collection

    cfg = compose([f"data.store={tmp_path}/typo.zarr"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    if refused:
        with pytest.raises(ConfigError, match="typo.zarr does not exist and collecting was declined"):
            confirm_collection(cfg)
    else:
        confirm_collection(cfg)


def test_existing_store_asks_nothing(tmp_path, monkeypatch):
    from s2robot.commands.train_policy import confirm_collection

    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked about an existing store"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    confirm_collection(compose([f"data.store={tmp_path}"]))
