"""Evaluation end to end on a tiny checkpoint (vit_t, random weights, 64 px): eval.json, videos,
determinism, seeds, worker processes; then the failure measures and the perception noise on a
privileged checkpoint. Episodes are capped at a few steps to stay fast. Over 250 lines: both halves
share the evaluation fixtures, which are the expensive part (one trained run each per module)."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

# timm (via training) after a simulator made an EGL context segfaults, and the tiny_store fixture
# makes one: import it while collecting the tests, as tests/serving/helpers.py does.
import s2robot.training.train  # noqa: F401
from envs.seeds import EVAL_SEED_START
from s2robot.errors import ConfigError
from s2robot.rollout.env_pool import EnvPool, WorkerError
from s2robot.rollout.evaluate import default_workers, eval_env_config, evaluate
from s2robot.rollout.records import format_summary, report_lines
from s2robot.stats import wilson_interval

ROOT = Path(__file__).resolve().parents[2]
TINY64 = [
    "encoder=vit_t",
    "encoder.weights=random",
    "encoder.img_size=64",
    "encoder.batch_size=16",
    "scales=[1,2]",
    "env.image_size=64",
    "data.n_episodes=2",
    "train.epochs=1",
    "train.batch_size=64",
    "train.progress=false",
    "train.warmup_steps=1",
]
HORIZON = 10
EVAL = dict(n_episodes=3, n_workers=2, n_videos=1, env_overrides={"horizon": HORIZON}, progress=False)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _live_children():
    """Env workers this process started that still run (multiprocessing's resource tracker is
    not an env worker and is not listed)."""
    return [p for p in multiprocessing.active_children() if _alive(p.pid)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from s2robot.training.train import train
    from tests.conftest import compose

    work = tmp_path_factory.mktemp("eval")
    train(compose([*TINY64, f"data.store={work / 'demos.zarr'}"]), work / "run")
    return work / "run"


@pytest.fixture(scope="module")
def evaluated(tiny_run):
    return evaluate(tiny_run, tiny_run / "eval", **EVAL)


def test_default_workers_fit_cores_and_episodes():
    assert default_workers(1) == 1
    assert default_workers(1000) == min(len(os.sched_getaffinity(0)), 1000)
    assert default_workers(3, 8) == 3
    with pytest.raises(ConfigError):
        default_workers(3, 0)


def test_env_config_keeps_a_camera_for_videos():
    ckpt = {"env": {"cameras": ["agentview"], "image_size": 64}, "config": {"data": {"camera": "agentview"}}}
    assert eval_env_config(ckpt, {"horizon": 5}, None, want_video=True) == (
        {"cameras": ["agentview"], "image_size": 64, "horizon": 5},
        "agentview",
    )
    assert eval_env_config({"env": {"cameras": []}}, None, None, want_video=True)[0]["cameras"] == ["agentview"]
    assert eval_env_config(ckpt, None, None, want_video=False) == ({"cameras": [], "image_size": 64}, None)
    with pytest.raises(ConfigError, match="hrizon"):
        eval_env_config(ckpt, {"hrizon": 5}, "agentview", want_video=False)
    with pytest.raises(ConfigError, match="camera"):
        eval_env_config(ckpt, {"cameras": []}, "agentview", want_video=False)


@pytest.mark.slow
def test_eval_json_is_well_formed(evaluated, tiny_run):
    path = tiny_run / "eval" / "eval.json"
    r = json.loads(path.read_text())
    assert r == json.loads(json.dumps(evaluated))
    assert r["n_episodes"] == 3 and r["n_workers"] == 2 and r["encoder"] == "vit_t" and r["scales"] == [1, 2]
    assert r["inputs"] == ["vision", "proprio"] and len(r["checkpoint_hash"]) == 16
    assert r["env"]["horizon"] == HORIZON and r["env"]["image_size"] == 64
    assert r["inference"] == {"device": "cpu", "dtype": "fp32", "compile": False}  # the default: eager fp32
    eps = r["episodes"]
    assert [e["seed"] for e in eps] == [EVAL_SEED_START + i for i in range(3)]
    assert {e["worker"] for e in eps} == {0, 1}  # the third episode reused a worker
    for e in eps:
        assert isinstance(e["success"], bool) and 1 <= e["length"] <= HORIZON and e["final_cube_height"] > 0
    assert r["successes"] == sum(e["success"] for e in eps)
    assert r["success_ci95"] == list(wilson_interval(r["successes"], 3))
    assert r["timing"]["env_steps"] == sum(e["length"] for e in eps) and r["timing"]["episodes_per_min"] > 0
    assert r["summary"] == format_summary(r) and r["summary"].startswith(f"success {r['successes']}/3 = ")


@pytest.mark.slow
def test_video_and_contact_sheet(evaluated):
    import imageio.v3 as iio
    from PIL import Image

    assert len(evaluated["videos"]) == 1
    first = evaluated["episodes"][0]
    word = "success" if first["success"] else "fail"
    assert evaluated["videos"][0].endswith(f"episode000_seed{EVAL_SEED_START}_{word}.mp4")
    frames = iio.imread(evaluated["videos"][0])
    assert frames.shape[0] == first["length"] + 1  # the reset frame, then one per step
    assert frames.shape[2] == 256 and frames.shape[1] > 256 and frames.shape[3] == 3  # 64 px upscaled + label bar
    sheet = Image.open(evaluated["contact_sheet"])
    assert sheet.width >= 5 * 128 and sheet.height >= 128


@pytest.mark.slow
def test_same_seeds_same_records(evaluated, tiny_run, tmp_path):
    again = evaluate(tiny_run, tmp_path, **{**EVAL, "n_videos": 0})

    def strip(records):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in records]

    assert strip(again["episodes"]) == strip(evaluated["episodes"])
    assert again["success_rate"] == evaluated["success_rate"]


@pytest.mark.slow
def test_eval_seeds_are_disjoint_from_demos(evaluated, tiny_run):
    from s2robot.checkpoint import load_checkpoint
    from s2robot.data.replay_buffer import ReplayBuffer

    store = ReplayBuffer.open(load_checkpoint(tiny_run)["store"]["path"])
    demo_seeds = set(store.episode_seeds.tolist()) | set(store.skipped_seeds.tolist())
    assert demo_seeds and not demo_seeds & {e["seed"] for e in evaluated["episodes"]}
    with pytest.raises(ConfigError, match="demonstration seeds"):
        evaluate(tiny_run, tiny_run / "bad", seed_start=EVAL_SEED_START - 2, progress=False)


@pytest.mark.slow
def test_no_worker_outlives_evaluate(evaluated):
    assert not _live_children()


@pytest.mark.slow
def test_worker_error_is_raised_and_workers_exit():
    with pytest.raises(WorkerError, match="worker 0 raised"):
        with EnvPool(2, {"cameras": [], "horizon": 5}) as pool:
            procs = list(pool.procs)
            pool.reset([0, 1], [EVAL_SEED_START, EVAL_SEED_START + 1])
            pool.step([0], np.zeros((1, 3)))  # wrong action size
    assert not any(p.is_alive() for p in procs) and not _live_children()


@pytest.mark.slow
def test_ctrl_c_leaves_no_workers(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, signal, sys
        from s2robot.rollout.env_pool import EnvPool
        if __name__ == "__main__":
            # As at a terminal: a launcher that ran the suite in the background (bash's `cmd &`)
            # leaves SIGINT ignored, which children inherit and Python then never raises on.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            with EnvPool(2, {"cameras": [], "horizon": 10_000}) as pool:
                pool.reset([0, 1], [100_000, 100_001])
                print("running", *[p.pid for p in pool.procs], flush=True)
                while True:
                    pool.step([0, 1], np.zeros((2, 7)))
    """)
    (tmp_path / "loop.py").write_text(script)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "loop.py")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        word, *pids = proc.stdout.readline().split()
        assert word == "running" and len(pids) == 2 and all(_alive(int(p)) for p in pids)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        # close() may wait 10 s for workers, then terminate them: leave room on a loaded machine.
        _, err = proc.communicate(timeout=60)
        assert "KeyboardInterrupt" in err
        deadline = time.monotonic() + 10
        while any(_alive(int(p)) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(int(p)) for p in pids)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_privileged_baseline_reads_the_cube_pose_from_info(tiny_run, tmp_path):
    """The privileged inputs (cube position and yaw) travel from the worker's info to the policy."""
    from s2robot.training.train import train
    from tests.conftest import compose

    store = tiny_run.parent / "demos.zarr"
    train(compose([*TINY64, f"data.store={store}", "inputs=[proprio,cube_pos,cube_yaw]"]), tmp_path / "priv")
    result = evaluate(
        tmp_path / "priv",
        tmp_path / "priv/eval",
        n_episodes=2,
        n_workers=1,
        n_videos=0,
        env_overrides={"horizon": HORIZON},
        progress=False,
    )
    assert result["inputs"] == ["proprio", "cube_pos", "cube_yaw"] and result["video_camera"] is None
    assert len(result["episodes"]) == 2


# -- failure measures and perception noise, on a privileged policy (no camera: fast) ---------------

NOISY = dict(n_episodes=2, n_workers=1, n_videos=0, env_overrides={"horizon": HORIZON}, progress=False)


@pytest.fixture(scope="module")
def privileged(tmp_path_factory, tiny_store):
    """A tiny privileged run (the session's 32 px store, no vision) and its evaluation without noise."""
    from s2robot.training.train import train
    from tests.conftest import TINY, compose

    work = tmp_path_factory.mktemp("privileged")
    train(compose([*TINY, f"data.store={tiny_store}", "inputs=[proprio,cube_pos,cube_yaw]"]), work / "run")
    return work / "run", evaluate(work / "run", work / "run/eval", **NOISY)


def _strip(records):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in records]


@pytest.mark.slow
def test_records_carry_the_failure_measures(privileged):
    from s2robot.rollout.failures import CATEGORIES, classify

    run, result = privileged
    for e in result["episodes"]:
        assert 0 <= e["min_xy_dist_m"] < 1 and 1 <= e["min_xy_step"] <= e["length"]
        assert e["max_cube_lift_m"] >= 0 and e["cube_displacement_m"] >= 0 and e["final_gripper_cube_dist_m"] > 0
        assert e["n_closings"] >= 0 and isinstance(e["closed_near"], bool)
        assert e["outcome"] == classify(e) and e["outcome"] in CATEGORIES
    counts = result["failures"]["counts"]
    assert sum(counts.values()) == 2 and counts["success"] == result["successes"]
    assert counts == {c: sum(e["outcome"] == c for e in result["episodes"]) for c in CATEGORIES}
    assert result["perception_noise"] is None
    assert json.loads((run / "eval/eval.json").read_text())["failures"]["counts"] == counts
    failed = [c for c, k in counts.items() if k and c != "success"]
    printed = [line for line in report_lines(result) if line.startswith("failures: ")]
    assert len(printed) == (1 if failed else 0) and all(c in printed[0] for c in failed)


@pytest.mark.slow
def test_zero_noise_gives_the_records_of_no_option(privileged, tmp_path):
    run, plain = privileged
    zero = evaluate(run, tmp_path, **NOISY, cube_pos_noise_m=0.0, cube_yaw_noise_deg=0.0, noise_mode="per_step")
    assert _strip(zero["episodes"]) == _strip(plain["episodes"]) and zero["perception_noise"] is None


@pytest.mark.slow
def test_noise_is_seeded_recorded_and_seen(privileged, tmp_path):
    from s2robot.rollout.noise import PrivilegedNoise

    run, plain = privileged
    noisy = evaluate(run, tmp_path / "a", **NOISY, cube_pos_noise_m=0.05, noise_mode="per_episode")
    recorded = json.loads((tmp_path / "a/eval.json").read_text())
    assert (
        recorded["perception_noise"]["cube_pos_sigma_m"] == 0.05
        and recorded["perception_noise"]["mode"] == "per_episode"
    )
    for e in recorded["episodes"]:  # drawn from the episode's seed alone: the same in any run, any worker count
        assert e["noise_offset_m"] == PrivilegedNoise(0.05).episode(e["seed"]).record()["noise_offset_m"]
    # the policy saw it: a 5 cm error moves the gripper elsewhere within 10 steps
    assert [e["final_gripper_cube_dist_m"] for e in noisy["episodes"]] != [
        e["final_gripper_cube_dist_m"] for e in plain["episodes"]
    ]


@pytest.mark.slow
def test_noise_on_a_vision_policy_is_refused_before_rollouts(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match=r"privileged_noise_cm perturbs cube_pos.*inputs are \[vision,proprio\]"):
        evaluate(tiny_run, tmp_path / "x", n_episodes=1, cube_pos_noise_m=0.01, progress=False)
    assert not (tmp_path / "x").exists()
