import pytest

from s2robot.data.replay_buffer import ReplayBuffer
from tests.commands import assert_one_line_error, run_cli


def test_misspelt_camera_is_one_line_and_leaves_nothing(tmp_path):
    proc = run_cli("scripts/collect_demos.py", "env.cameras=[agentveiw]", f"store={tmp_path}/s.zarr", cwd=tmp_path)
    assert_one_line_error(proc, "env.cameras=[agentveiw]", "did you mean agentview?")
    assert list(tmp_path.iterdir()) == []  # neither the store nor Hydra's outputs/<date>/<time>


def test_store_made_with_other_settings_is_one_line(tmp_path):
    store = tmp_path / "s.zarr"
    ReplayBuffer.create(store, attrs={"env": {"image_size": 448}, "expert": {}, "collection": {}})
    proc = run_cli("scripts/collect_demos.py", "n_episodes=1", f"store={store}", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(proc, str(store), "existing store was collected with env=", "choose another store path")
    assert not (tmp_path / "run").exists() and ReplayBuffer.open(store).n_episodes == 0


def test_robosuite_start_up_warnings_are_silenced():
    proc = run_cli(
        "-c",
        "from s2robot.simulator import quiet_robosuite_import; quiet_robosuite_import(); "
        "import robosuite; import logging; logging.getLogger('robosuite_logs').warning('kept')",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "macro" not in proc.stderr and "robosuite_models" not in proc.stderr and "mink" not in proc.stderr
    assert "kept" in proc.stderr  # robosuite's other warnings still come through


@pytest.mark.slow
def test_collect_prints_no_robosuite_warnings(tmp_path):
    proc = run_cli(
        "scripts/collect_demos.py",
        "n_episodes=1",
        "env.image_size=32",
        f"store={tmp_path}/s.zarr",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "robosuite" not in proc.stderr + proc.stdout
