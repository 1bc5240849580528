"""Failure classification: synthetic trajectories through the per-step trace reach every category,
and scripts/classify_failures.py reports them from an eval.json."""

import json

import numpy as np
import pytest

from s2robot.errors import UserError
from s2robot.rollout import failures
from s2robot.rollout.failures import CATEGORIES, EpisodeTrace, classify, summarize, table_lines
from tests.commands import assert_one_line_error, run_cli

REST = 0.02  # cube centre above the table at rest
CUBE = np.array([0.0, 0.0, 0.8 + REST])
OPEN, CLOSE = -1.0, 1.0


def _quat_z(deg):
    a = np.deg2rad(deg) / 2
    return np.array([0.0, 0.0, np.sin(a), np.cos(a)])  # xyzw


def run(steps, success=False):
    """``steps``: (eef xyz, gripper yaw deg, cube xyz, gripper command) per step -> the eval.json record."""
    info = {"cube_pos": CUBE + [0, 0, 0.01], "cube_quat": _quat_z(0), "cube_height": REST + 0.01}  # dropped at reset
    trace = EpisodeTrace(info)
    for eef, yaw, cube, grip in steps:
        proprio = np.concatenate([eef, _quat_z(yaw), [0.04, 0.04]])
        cube = np.asarray(cube, dtype=float)
        info = {"cube_pos": cube, "cube_quat": _quat_z(0), "cube_height": cube[2] - 0.8}
        trace.step(proprio, info, np.array([0, 0, 0, 0, 0, 0, grip]))
    return {"success": success, **trace.record()}


def approach(to, n=5, yaw=0.0, cube=CUBE, start=(0.1, 0.1, 0.95)):
    return [(np.array(start) + (np.asarray(to) - start) * (k + 1) / n, yaw, cube, OPEN) for k in range(n)]


ABOVE = CUBE + [0, 0, -0.005]  # where the expert closes: 0.5 cm below the cube's centre


def test_each_category_from_a_trajectory():
    lifted_and_lost = (
        approach(ABOVE)
        + [(ABOVE, 0, CUBE, CLOSE)]
        + [(ABOVE + [0, 0, dz], 0, CUBE + [0, 0, dz], CLOSE) for dz in (0.005, 0.012, 0.015)]
        + [(ABOVE + [0, 0, 0.05], 0, CUBE, CLOSE)]
    )
    closed_aligned = approach(ABOVE) + [(ABOVE, 5, CUBE, CLOSE)] * 3 + [(ABOVE + [0, 0, 0.05], 5, CUBE, CLOSE)]
    closed_turned = approach(ABOVE, yaw=30) + [(ABOVE, 30, CUBE, CLOSE)] * 3
    pushed = approach(CUBE + [0.03, 0, 0]) + [
        (CUBE + [0.03 - d, 0, 0], 0, CUBE - [d, 0, 0], OPEN) for d in (0.01, 0.02, 0.03)
    ]
    beside = approach(CUBE + [0.05, 0, 0]) + [(CUBE + [0.05, 0, 0], 0, CUBE, CLOSE)] * 3
    over = approach(CUBE + [0, 0, 0.06]) + [(CUBE + [0, 0, 0.06], 0, CUBE, CLOSE)] * 3  # within xy, 6 cm above
    hover = approach(CUBE + [0.005, 0, 0.08]) + [(CUBE + [0.005, 0, 0.08], 20, CUBE, OPEN)] * 10
    expected = {
        "success": run(lifted_and_lost, success=True),
        "grasp_slip": run(lifted_and_lost),
        "wrong_yaw": run(closed_turned),
        "pushed": run(pushed),
        "missed_position": run(beside),
        "wandering": run(hover),
    }
    for category, record in expected.items():
        assert classify(record) == category, (category, record)
    assert classify(run(closed_aligned)) == "grasp_slip"  # closed on it, aligned, did not hold it
    assert classify(run(over)) == "missed_position"  # closed above it
    assert set(expected) == set(CATEGORIES)


def test_record_measures():
    r = run(
        approach(ABOVE, yaw=30)
        + [(ABOVE, 30, CUBE, CLOSE)] * 2
        + [(ABOVE, 30, CUBE, OPEN), (ABOVE + [0.01, 0, 0], 10, CUBE, CLOSE)]
    )
    assert r["n_closings"] == 2  # open -> close twice; holding the close is one closing
    assert r["close_step"] == 6 and r["close_xy_dist_m"] == 0 and r["close_z_offset_m"] == -0.005
    assert r["yaw_err_at_close_deg"] == pytest.approx(30, abs=0.01)  # the closing nearest the cube
    assert r["min_xy_dist_m"] == 0 and r["yaw_err_at_closest_deg"] == pytest.approx(30, abs=0.01)
    assert r["closed_near"] is True and r["cube_displacement_m"] == 0
    assert r["final_gripper_cube_dist_m"] == pytest.approx(np.hypot(0.01, 0.005), abs=1e-5)
    # the nearest cube face: a gripper turned 80 deg is 10 deg off a face of a cube
    assert run(approach(ABOVE, yaw=80))["yaw_err_at_closest_deg"] == pytest.approx(10, abs=0.01)
    never = run(approach(CUBE + [0.1, 0, 0]))
    assert never["close_step"] is None and never["yaw_err_at_close_deg"] is None and never["closed_near"] is False


def test_lift_counts_from_the_cube_at_rest_not_from_its_drop_at_reset():
    # the env drops the cube from 1 cm up at reset: a 1.5 cm rise after it settled is 0.5 cm above the start
    r = run(
        approach(ABOVE)
        + [
            (ABOVE, 0, CUBE, CLOSE),
            (ABOVE + [0, 0, 0.015], 0, CUBE + [0, 0, 0.015], CLOSE),
            (ABOVE + [0, 0, 0.06], 0, CUBE, CLOSE),
        ]
    )
    assert r["max_cube_lift_m"] == pytest.approx(0.015) and r["max_cube_height"] == pytest.approx(REST + 0.015)
    still = run(approach(CUBE + [0.1, 0, 0]))
    assert still["max_cube_lift_m"] == 0 and still["max_cube_height"] == pytest.approx(REST)


def test_thresholds_are_where_the_docstring_says():
    near = run(
        approach(ABOVE + [failures.XY_REACH * 0.9, 0, 0]) + [(ABOVE + [failures.XY_REACH * 0.9, 0, 0], 0, CUBE, CLOSE)]
    )
    far = run(
        approach(ABOVE + [failures.XY_REACH * 1.1, 0, 0]) + [(ABOVE + [failures.XY_REACH * 1.1, 0, 0], 0, CUBE, CLOSE)]
    )
    assert classify(near) == "grasp_slip" and classify(far) == "missed_position"
    turned = lambda deg: classify(run(approach(ABOVE, yaw=deg) + [(ABOVE, deg, CUBE, CLOSE)]))  # noqa: E731
    assert turned(failures.YAW_TOL_DEG - 1) == "grasp_slip" and turned(failures.YAW_TOL_DEG + 1) == "wrong_yaw"


def test_summary_counts_and_shares():
    beside = run(approach(CUBE + [0.05, 0, 0]) + [(CUBE + [0.05, 0, 0], 0, CUBE, CLOSE)])
    records = [{"success": True}] * 2 + [beside] * 3 + [run(approach(CUBE + [0.005, 0, 0.08]))]
    s = summarize(records)
    assert s["n_episodes"] == 6 and s["n_failures"] == 4
    assert s["counts"] == {
        "success": 2,
        "grasp_slip": 0,
        "wrong_yaw": 0,
        "pushed": 0,
        "missed_position": 3,
        "wandering": 1,
    }
    assert s["share_of_failures"]["missed_position"] == 0.75 and s["thresholds"]["yaw_tol_deg"] == 15.0
    lines = table_lines(s)
    assert lines[5].split()[:2] == ["missed_position", "3"] and "75.0%" in lines[5]


def test_a_record_without_the_measures_is_a_user_error():
    with pytest.raises(UserError, match="evaluate the checkpoint again"):
        classify({"success": False, "length": 120})


def test_classify_failures_script(tmp_path):
    episodes = [
        {"seed": 100000 + i, **r}
        for i, r in enumerate(
            [
                {"success": True},
                run(approach(CUBE + [0.05, 0, 0]) + [(CUBE + [0.05, 0, 0], 0, CUBE, CLOSE)]),
                run(approach(ABOVE, yaw=30) + [(ABOVE, 30, CUBE, CLOSE)]),
            ]
        )
    ]
    run_dir = tmp_path / "run"
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "eval/eval.json").write_text(json.dumps({"episodes": episodes}))
    proc = run_cli("scripts/classify_failures.py", str(run_dir), "--out", str(tmp_path / "f.json"))
    assert proc.returncode == 0, proc.stderr
    assert "missed_position       1" in proc.stdout and "wrong_yaw             1" in proc.stdout
    out = json.loads((tmp_path / "f.json").read_text())
    assert out["counts"]["success"] == 1 and [e["outcome"] for e in out["episodes"]] == [
        "success",
        "missed_position",
        "wrong_yaw",
    ]
    (tmp_path / "old.json").write_text(json.dumps({"episodes": [{"success": False, "seed": 1}]}))
    assert_one_line_error(run_cli("scripts/classify_failures.py", str(tmp_path / "old.json")), "predates")
    assert_one_line_error(run_cli("scripts/classify_failures.py", str(tmp_path / "none.json")), "no eval.json at")
