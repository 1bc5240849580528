"""robomimic Lift with --sim cube_pick: the store records CubePick set up as the dataset was made
(cameras, image size, Lift's placement, rate), training takes that env from the store, and the
policy is evaluated in it; a dataset that is not CubePick's data is refused in one line."""

import h5py
import numpy as np
import pytest

# timm (via training) after a simulator made an EGL context segfaults: import it first (tests/rollout).
import s2robot.training.train  # noqa: F401
from envs.seeds import EVAL_SEED_START
from s2robot.commands import import_dataset as import_command
from s2robot.data.formats import FormatError
from s2robot.data.formats.importer import import_dataset, open_source
from s2robot.data.formats.mapping import ROBOMIMIC_LIFT
from s2robot.data.formats.sim import ROBOMIMIC_LIFT_HORIZON, ROBOMIMIC_LIFT_PLACEMENT
from s2robot.data.replay_buffer import ReplayBuffer
from tests.commands.test_inspect_export import assert_one_line_error, run
from tests.conftest import TINY, compose
from tests.data.formats.datasets import ROBOMIMIC_ENV_ARGS, make_robomimic, robomimic_from_store


def test_lift_records_its_env(tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5", size=84)
    summary = import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT, sim="cube_pick")
    attrs = ReplayBuffer.open(tmp_path / "s.zarr").attrs
    env = attrs["env"]
    assert summary["env"] == env and attrs["eval_seed_start"] == EVAL_SEED_START
    assert env["cameras"] == ["agentview", "robot0_eye_in_hand"] and env["image_size"] == 84
    assert env["placement"] == ROBOMIMIC_LIFT_PLACEMENT and env["control_freq"] == 20
    assert env["horizon"] == ROBOMIMIC_LIFT_HORIZON and env["init_noise"] == 0.02 and env["id"] == "CubePick-v0"
    # resuming needs the same --sim: a store with an env is not continued without one, nor the reverse
    with pytest.raises(FormatError, match="exists with a simulator env, this import records none"):
        import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT)
    import_dataset(open_source(path), tmp_path / "n.zarr", ROBOMIMIC_LIFT, max_episodes=1)
    with pytest.raises(FormatError, match="exists with no simulator env, this import records another"):
        import_dataset(open_source(path), tmp_path / "n.zarr", ROBOMIMIC_LIFT, sim="cube_pick")


def _other_task(path):
    with h5py.File(path, "a") as f:
        f["data"].attrs["env_args"] = '{"env_name": "PickPlaceCan", "env_kwargs": {"robots": ["Panda"]}}'


def _far_demo_number(path):
    with h5py.File(path, "a") as f:
        f.move("data/demo_1", f"data/demo_{EVAL_SEED_START + 5}")


@pytest.mark.parametrize(
    "argv,change,words",
    [
        ([], _other_task, ["task 'PickPlaceCan'", "robosuite Lift with one Panda"]),
        (["--camera", "agentview_image=frontview"], None, ["agentview_image holds robosuite's agentview view"]),
        (["--camera", "agentview_image=front"], None, ["store camera 'front' is not a camera of robosuite's Lift"]),
        (["--proprio", "robot0_eef_pos"], None, ["CubePick's proprio is"]),
        (["--action-bounds", "data"], None, ["disagrees with", "action_low", "import without --sim"]),
        ([], _far_demo_number, [f"demo numbers up to {EVAL_SEED_START + 5} reach the evaluation seeds"]),
    ],
)
def test_what_is_not_cube_pick_is_refused(tmp_path, monkeypatch, capsys, argv, change, words):
    path = make_robomimic(tmp_path / "lift.hdf5")
    if change:
        change(path)
    code, _, err = run(import_command, monkeypatch, capsys, path, tmp_path / "s.zarr", "--sim", "cube_pick", *argv)
    assert_one_line_error(code, err, "--sim cube_pick", *words)
    assert not (tmp_path / "s.zarr").exists()


def test_cameras_of_another_size_are_refused(tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5")
    with h5py.File(path, "a") as f:
        for i in range(2):
            del f[f"data/demo_{i}/obs/robot0_eye_in_hand_image"]
            f[f"data/demo_{i}/obs/robot0_eye_in_hand_image"] = np.zeros((10, 16, 16, 3), np.uint8)
    with pytest.raises(FormatError, match=r"cameras of \[\(16, 16\), \(32, 32\)\] pixels; CubePick renders square"):
        import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT, sim="cube_pick")


@pytest.mark.slow
def test_imported_lift_trains_and_evaluates_in_its_placement(tmp_path, monkeypatch, capsys):
    """Demos of our simulator at robomimic's placement, written as robomimic writes Lift, imported
    with --sim, trained on with no env override (the config's env is CubePick's 224 px, wide
    placement) and evaluated: the evaluation env is the dataset's (32 px, +-3 cm)."""
    from envs.cube_pick import make_env
    from s2robot.data.collect import collect_demos
    from s2robot.rollout.evaluate import evaluate
    from s2robot.training.train import train

    env = {"cameras": ["agentview"], "image_size": 32, "placement": ROBOMIMIC_LIFT_PLACEMENT}
    collect_demos(env, tmp_path / "sim.zarr", n_episodes=3, progress=False)
    path = robomimic_from_store(tmp_path / "sim.zarr", tmp_path / "lift.hdf5")
    code, out, err = run(
        import_command, monkeypatch, capsys, path, tmp_path / "lift.zarr", "--sim", "cube_pick",
        "--camera", "agentview_image=agentview",
    )  # fmt: skip
    assert code == 0 and "evaluates in CubePick-v0 at 32 px" in out, err
    store = ReplayBuffer.open(tmp_path / "lift.zarr")
    assert list(store.episode_seeds) == [0, 1, 2] and store.episode_seeds.max() < EVAL_SEED_START

    overrides = [o for o in TINY if not o.startswith("env.")]
    train(compose([*overrides, f"data.store={tmp_path / 'lift.zarr'}", "train.epochs=1"]), tmp_path / "run")
    result = evaluate(
        tmp_path / "run", tmp_path / "eval", n_episodes=1, n_workers=1, n_videos=0, progress=False,
        env_overrides={"horizon": 4},
    )  # fmt: skip
    used = result["env"]
    assert (
        used["image_size"] == 32 and used["cameras"] == ["agentview"] and used["placement"] == ROBOMIMIC_LIFT_PLACEMENT
    )
    assert used["control_freq"] == ROBOMIMIC_ENV_ARGS["env_kwargs"]["control_freq"] and result["n_episodes"] == 1
    assert result["seed_start"] >= EVAL_SEED_START
    # the evaluation seed puts the cube where robomimic's Lift would: within 3 cm of the table centre
    probe = make_env({**used, "cameras": []})
    try:
        _, info = probe.reset(seed=result["seeds"][0])
    finally:
        probe.close()
    assert np.abs(info["cube_pos"][:2]).max() <= 0.03 + 1e-6
