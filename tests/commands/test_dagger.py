"""scripts/dagger.py as a user runs it: bad input refused in one line before any work, no run
directory left behind."""

import pytest

from s2robot.data.replay_buffer import ReplayBuffer
from tests.commands import assert_one_line_error, run_cli


def test_rounds_below_one_is_one_line_and_leaves_nothing(tmp_path):
    proc = run_cli("scripts/dagger.py", "rounds=0", cwd=tmp_path)
    assert_one_line_error(proc, "rounds=0: must be >= 1")
    assert list(tmp_path.iterdir()) == []  # no runs/dagger/<date>


@pytest.mark.slow  # a subprocess importing torch: ~15 s on a busy machine
def test_store_without_privileged_state_is_one_line_before_any_work(tmp_path):
    store = tmp_path / "blind.zarr"
    buffer = ReplayBuffer.create(store, attrs={"env": {"cameras": []}})
    for seed in range(2):
        buffer.add_episode({"proprio": [[0.0] * 9] * 3, "action": [[0.0] * 7] * 3}, seed=seed)
    overrides = ",".join(f'"{o}"' for o in ("encoder=vit_t", f"data.store={store}", "inputs=[proprio]"))
    proc = run_cli("scripts/dagger.py", f"train_overrides=[{overrides}]", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(proc, "blind.zarr: no cube_pos, cube_quat in this store", "scripts/collect_demos.py")
    assert not (tmp_path / "run").exists() and ReplayBuffer.open(store).n_episodes == 2
