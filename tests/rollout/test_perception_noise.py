"""Perception noise on the privileged cube pose: seeded per episode, per-episode offsets fixed and
per-step draws fresh, the eval_policy keys range-checked, and scripts/perception_noise.py's sweep
(resume, pooling, JSON and plot) with the rollouts stubbed out."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from s2robot.config.evaluate import NOISE_AXES, NOISE_MODES
from s2robot.errors import ConfigError, UserError
from s2robot.rollout.noise import AXES, MODES, PrivilegedNoise
from s2robot.stats import wilson_interval

ROOT = Path(__file__).resolve().parents[2]
OBS = {
    "proprio": np.zeros(9, np.float32),
    "cube_pos": np.array([0.1, -0.05, 0.83], np.float32),
    "cube_yaw": np.array([0.0, 1.0], np.float32),
}


def _script():
    spec = importlib.util.spec_from_file_location("perception_noise", ROOT / "scripts/perception_noise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_episode_offset_is_fixed_and_seeded():
    noise = PrivilegedNoise(0.02, 0.0, "per_episode")
    a, again, other = noise.episode(100000), noise.episode(100000), noise.episode(100001)
    seen = [a.apply(OBS)["cube_pos"] for _ in range(3)]
    assert all(np.array_equal(s, seen[0]) for s in seen)  # the same offset at every step
    assert np.array_equal(again.apply(OBS)["cube_pos"], seen[0])  # same seed, same noise
    assert not np.allclose(other.apply(OBS)["cube_pos"], seen[0])
    assert np.allclose(seen[0] - OBS["cube_pos"], a.record()["noise_offset_m"], atol=1e-6)
    assert np.array_equal(a.apply(OBS)["cube_yaw"], OBS["cube_yaw"])  # no yaw sigma: yaw untouched
    assert OBS["cube_pos"][0] == np.float32(0.1)  # the observation itself is not modified


def test_per_step_draws_fresh_noise_with_sigma_std():
    noise = PrivilegedNoise(0.01, 0.0, "per_step")
    ep = noise.episode(100000)
    errors = np.array([ep.apply(OBS)["cube_pos"] - OBS["cube_pos"] for _ in range(4000)])
    assert np.std(errors, axis=0) == pytest.approx([0.01] * 3, rel=0.06)
    assert abs(np.mean(errors)) < 1e-3 and ep.record() == {}
    replay = noise.episode(100000)
    assert np.array_equal(replay.apply(OBS)["cube_pos"] - OBS["cube_pos"], errors[0])


def test_offsets_grow_with_sigma_in_the_same_direction():
    small, large = PrivilegedNoise(0.01).episode(7), PrivilegedNoise(0.03).episode(7)
    assert np.allclose(3 * np.array(small.record()["noise_offset_m"]), large.record()["noise_offset_m"], atol=3e-6)


def test_xy_noise_leaves_the_height_exact():
    xyz, xy = PrivilegedNoise(0.02).episode(11), PrivilegedNoise(0.02, axes="xy").episode(11)
    a, b = xyz.record()["noise_offset_m"], xy.record()["noise_offset_m"]
    assert b[2] == 0 and a[2] != 0 and a[:2] == b[:2]  # the same draws, the height not perturbed
    assert xy.apply(OBS)["cube_pos"][2] == OBS["cube_pos"][2]
    assert PrivilegedNoise(0.02, axes="xy").describe()["axes"] == "xy"
    with pytest.raises(ConfigError, match="privileged_noise_axes=z"):
        PrivilegedNoise(0.02, axes="z")


def test_yaw_noise_turns_the_features_by_four_times_the_error():
    ep = PrivilegedNoise(0.0, 10.0, "per_episode").episode(3)
    delta = np.deg2rad(ep.record()["noise_yaw_deg"])
    yaw = ep.apply(OBS)["cube_yaw"]
    assert np.allclose(yaw, [np.sin(4 * delta), np.cos(4 * delta)], atol=1e-4)
    assert np.array_equal(ep.apply(OBS)["cube_pos"], OBS["cube_pos"])


def test_no_noise_is_no_change_and_bad_settings_are_refused():
    off = PrivilegedNoise(0.0, 0.0, "per_step")
    assert off.episode(100000) is None and off.describe() is None
    assert PrivilegedNoise(0.01).describe()["cube_pos_sigma_m"] == 0.01
    with pytest.raises(ConfigError, match="noise_mode=sometimes"):
        PrivilegedNoise(0.01, 0, "sometimes")
    with pytest.raises(ConfigError, match=">= 0"):
        PrivilegedNoise(-0.01)
    with pytest.raises(ConfigError, match=r"inputs are \[vision,proprio\]"):
        PrivilegedNoise(0.01).check_inputs(["vision", "proprio"])
    with pytest.raises(ConfigError, match="privileged_yaw_noise_deg perturbs cube_yaw"):
        PrivilegedNoise(0.0, 5.0).check_inputs(["proprio", "cube_pos"])
    PrivilegedNoise(0.01).check_inputs(["proprio", "cube_pos"])
    PrivilegedNoise(0.0).check_inputs(["vision"])  # no noise: any policy


def test_eval_policy_keys_are_range_checked():
    from s2robot.config.evaluate import validate_eval_policy
    from tests.conftest import compose

    assert NOISE_MODES == MODES and NOISE_AXES == AXES
    cfg = compose(["checkpoint=x"], config_name="eval_policy")
    assert cfg.privileged_noise_cm == 0 and cfg.noise_mode == "per_episode"
    validate_eval_policy(cfg)
    for overrides, message in (
        (["privileged_noise_cm=-1"], "privileged_noise_cm=-1.0: must be in [0, 100]"),
        (["noise_mode=per_stp"], "did you mean per_step?"),
        (["privileged_yaw_noise_deg=200"], "privileged_yaw_noise_deg=200.0"),
        (["privileged_noise_axes=xz"], "privileged_noise_axes=xz: must be one of xyz, xy"),
    ):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("?", r"\?")):
            validate_eval_policy(compose(["checkpoint=x", *overrides], config_name="eval_policy"))


# -- scripts/perception_noise.py, with evaluate() stubbed -----------------------------------------


def _fake_checkpoint(path: Path, inputs):
    import torch

    from s2robot.checkpoint import FORMAT, VERSION

    path.mkdir(parents=True)
    torch.save({"format": FORMAT, "version": VERSION, "inputs": inputs}, path / "checkpoint.pt")
    return path


@pytest.fixture
def fake_evaluate(monkeypatch):
    """evaluate() -> a result whose successes fall with sigma; records every call."""
    import s2robot.rollout.evaluate as ev

    calls = []

    def evaluate(
        checkpoint,
        out_dir,
        n_episodes,
        seed_start,
        cube_pos_noise_m,
        cube_yaw_noise_deg,
        noise_mode,
        cube_pos_noise_axes,
        **_,
    ):
        from s2robot.checkpoint import checkpoint_hash
        from s2robot.rollout.noise import PrivilegedNoise

        calls.append(
            (Path(checkpoint).parent.name, cube_pos_noise_m, cube_yaw_noise_deg, noise_mode, cube_pos_noise_axes)
        )
        succ = max(
            0,
            n_episodes
            - int(round(100 * cube_pos_noise_m))
            - int(cube_yaw_noise_deg // 5)
            - (noise_mode == "per_step")
            + (cube_pos_noise_axes == "xy"),
        )
        result = {
            "checkpoint_hash": checkpoint_hash(checkpoint),
            "n_episodes": n_episodes,
            "seed_start": seed_start,
            "perception_noise": PrivilegedNoise(
                cube_pos_noise_m, cube_yaw_noise_deg, noise_mode, cube_pos_noise_axes
            ).describe(),
            "successes": succ,
            "eval_json": str(Path(out_dir) / "eval.json"),
            "failures": {"counts": {"success": succ, "missed_position": n_episodes - succ}},
        }
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "eval.json").write_text(json.dumps(result))
        return result

    monkeypatch.setattr(ev, "evaluate", evaluate)
    return calls


def test_sweep_pools_seeds_resumes_and_plots(tmp_path, fake_evaluate):
    script = _script()
    runs = [_fake_checkpoint(tmp_path / f"priv_seed{s}", ["proprio", "cube_pos", "cube_yaw"]) for s in range(2)]
    argv = [
        *map(str, runs),
        "--out",
        str(tmp_path / "out"),
        "--sigmas-cm",
        "0",
        "1",
        "2",
        "--axes",
        "xyz",
        "xy",
        "--n-episodes",
        "10",
        "--yaw-deg",
        "10",
    ]
    summary = script.sweep(script.parse_args(argv), log=lambda _: None)
    # sigma 0 once for every line; per mode 2 position sigmas on 2 axes settings and 1 yaw sigma; 2 runs each
    assert len(fake_evaluate) == 2 * (1 + 2 * (2 * 2 + 1))
    points = {(p["kind"], p["mode"], p["axes"], p["sigma"]): p for p in summary["points"]}
    assert points[("pos", "per_episode", "xy", 2.0)]["successes"] == 18
    p = points[("pos", "per_episode", "xyz", 2.0)]
    assert p["successes"] == 16 and p["n_episodes"] == 20 and p["per_run"] == [8, 8]
    assert p["ci95"] == list(wilson_interval(16, 20)) and p["outcomes"] == {"success": 16, "missed_position": 4}
    assert points[("none", None, None, 0.0)]["successes"] == 20
    assert points[("pos", "per_step", "xyz", 1.0)]["successes"] == 16
    assert points[("yaw", "per_episode", None, 10.0)]["unit"] == "deg"
    out = tmp_path / "out"
    written = json.loads((out / "perception_noise.json").read_text())
    assert written["points"] == json.loads(json.dumps(summary["points"]))
    assert (out / "perception_noise.png").stat().st_size > 10_000
    assert (out / "per_episode/pos_2cm/priv_seed1/eval.json").is_file() and (out / "none/priv_seed0").is_dir()
    assert (out / "per_step/posxy_1cm/priv_seed0/eval.json").is_file()
    lines = script.table_lines(summary)
    assert lines[0].split()[:4] == ["noise", "mode", "axes", "sigma"] and "16/20" in "".join(lines)

    script.plot = lambda *a, **k: None  # plotted above already; the reruns test the reuse
    older = out / "per_step/pos_1cm/priv_seed0/eval.json"  # written before the axes option: xyz
    r = json.loads(older.read_text())
    older.write_text(
        json.dumps({**r, "perception_noise": {k: v for k, v in r["perception_noise"].items() if k != "axes"}})
    )
    fake_evaluate.clear()  # a rerun reuses every finished evaluation ...
    script.sweep(script.parse_args(argv), log=lambda _: None)
    assert fake_evaluate == []
    more = [*map(str, runs), "--out", str(out), "--sigmas-cm", "1", "2", "3", "--n-episodes", "10"]
    script.sweep(script.parse_args(more), log=lambda _: None)
    assert sorted({c[1] for c in fake_evaluate}) == [0.03]  # ... and runs only the new points

    fake_evaluate.clear()  # --only-finished runs nothing and leaves out the points not evaluated on every run
    (out / "per_step/pos_3cm/priv_seed1/eval.json").unlink()
    partial = script.sweep(script.parse_args([*more, "--only-finished"]), log=lambda _: None)
    assert fake_evaluate == [] and partial["not_finished"] == [
        {"kind": "pos", "mode": "per_step", "axes": "xyz", "sigma": 3.0}
    ]
    assert ("pos", "per_step", "xyz", 2.0) in {(p["kind"], p["mode"], p["axes"], p["sigma"]) for p in partial["points"]}


def test_sweep_refuses_a_vision_policy_before_any_work(tmp_path, fake_evaluate):
    script = _script()
    good = _fake_checkpoint(tmp_path / "priv", ["proprio", "cube_pos", "cube_yaw"])
    vision = _fake_checkpoint(tmp_path / "vis", ["vision", "proprio"])
    with pytest.raises(UserError, match=r"inputs \[vision,proprio\].*inputs=\[proprio,cube_pos,cube_yaw\]"):
        script.sweep(script.parse_args([str(good), str(vision), "--out", str(tmp_path / "o")]), log=print)
    assert fake_evaluate == [] and not (tmp_path / "o").exists()
