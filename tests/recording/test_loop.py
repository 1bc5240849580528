"""The whole real-arm loop on a robot that is not CubePick (tests/recording/fake_arm.py: 4 actions
in [-2, 3], camera ``front`` at 40 px, 10 Hz): record demos with a scripted device -> train ->
serve -> run with --record -> import the rollouts."""

import json
import logging

import numpy as np
import pytest

import s2robot.training.train  # noqa: F401  (timm before anything else, as the serving tests do)
from tests.conftest import TINY, compose
from tests.recording.fake_arm import HIGH, LOW, SIZE, demo_actions

ARM = "tests.recording.fake_arm:FakeArm"


@pytest.mark.slow
def test_record_train_serve_run_record(tmp_path, caplog, capsys):
    from s2robot.checkpoint import load_checkpoint
    from s2robot.commands.record_demos import main as record
    from s2robot.data.replay_buffer import ReplayBuffer
    from s2robot.rollout.controller import PolicyController
    from s2robot.serving import PolicyServer
    from s2robot.training.train import train
    from s2robot_client.runtime import main as run_robot

    np.save(tmp_path / "demo.npy", demo_actions())
    store = tmp_path / "demos.zarr"
    record(
        [
            "--robot",
            ARM,
            "--device",
            f"replay:{tmp_path / 'demo.npy'}",
            "--store",
            str(store),
            "--episodes",
            "3",
            "--rate",
            "0",
        ]
    )
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["kept"] == 3

    cfg = compose([*TINY, f"data.store={store}", "data.cameras=[front]", "train.epochs=1", "eval.enabled=true"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with caplog.at_level(logging.INFO, logger="s2robot.training.train"):
        metrics = train(cfg, run_dir)
    assert np.isfinite(metrics["val_action_mae"])
    assert sum("has no simulator" in r.getMessage() for r in caplog.records) == 1
    ckpt = load_checkpoint(run_dir)
    assert ckpt["robot"]["action_low"] == LOW and ckpt["env"] is None

    runner = PolicyController.from_checkpoint(run_dir)
    md = runner.metadata
    assert (md["action_dim"], md["action_low"], md["action_high"]) == (4, LOW, HIGH)
    assert md["image_shapes"] == {"front": [SIZE, SIZE, 3]} and md["control_freq"] == 10
    server = PolicyServer(runner, port=0)
    server.start_in_thread()
    spool = tmp_path / "rollouts"
    try:
        rc = run_robot(
            [
                "--server",
                f"ws://127.0.0.1:{server.port}",
                "--robot",
                ARM,
                "--episodes",
                "2",
                "--rate",
                "0",
                "--record",
                str(spool),
            ]
        )
    finally:
        server.stop()
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["steps"] for r in lines] == [12, 12] and all(r["fresh"] == 12 for r in lines)

    record(["--import", str(spool), "--store", str(tmp_path / "rollouts.zarr")])
    out = ReplayBuffer.open(tmp_path / "rollouts.zarr")
    assert out.n_episodes == 2 and out.keys == ["action", "front", "held", "proprio", "timestamp"]
    assert out.attrs["robot"]["name"] == "fake 4-joint arm" and "env" not in out.attrs
    actions = out["action"]
    assert actions.shape == (24, 4) and (actions >= -2).all() and (actions <= 3).all()
    assert out.episode_success.tolist() == [line["success"] for line in lines]
    record(["--import", str(spool), "--store", str(tmp_path / "rollouts.zarr")])  # again: nothing new
    assert ReplayBuffer.open(tmp_path / "rollouts.zarr").n_episodes == 2
