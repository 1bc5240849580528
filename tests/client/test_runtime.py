"""The robot-side command (`s2robot-robot`, scripts/run_robot.py): adapters, episodes, a lost server."""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s2robot_client.runtime import main
from tests.serving.helpers import StubRunner, serving

ROOT = Path(__file__).resolve().parents[2]
ARMS = []  # every Arm the runtime built, for the test to inspect
AT_STEP = {}  # step -> what to do after that step was applied (e.g. stop the server)


class Arm:
    """A Robot adapter as a user writes one: ``Class(metadata)``, with the optional reset and done."""

    length = 5  # steps per episode

    def __init__(self, metadata):
        self.metadata, self.applied, self.resets, self.stopped, self.done = metadata, [], [], 0, True
        ARMS.append(self)

    def reset(self, seed):
        self.resets.append(seed)
        self.done, self.steps = False, 0

    def get_observation(self):
        return {"proprio": np.zeros(9, np.float32)}

    def apply_action(self, a):
        self.applied.append(np.array(a))
        self.steps += 1
        self.done = self.steps >= self.length
        if self.steps in AT_STEP:
            AT_STEP.pop(self.steps)()

    def stop(self):
        self.stopped += 1


@pytest.fixture(autouse=True)
def _clean():
    ARMS.clear()
    AT_STEP.clear()
    yield
    AT_STEP.clear()


def _args(port, *extra):
    return ["--server", f"ws://127.0.0.1:{port}", "--robot", f"{__name__}:Arm", "--rate", "0", "--retries", "0", *extra]


def test_episodes_run_and_print_one_json_line_each(capsys):
    with serving(StubRunner()) as server:
        assert main(_args(server.port, "--episodes", "2")) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["episode"] for x in lines] == [0, 1] and all(x["steps"] == 5 and x["fresh"] == 5 for x in lines)
    (arm,) = ARMS
    assert arm.resets == [100_000, 100_001] and arm.stopped == 2


def _lost_run(capsys, *args):
    with serving(StubRunner()) as server:
        AT_STEP[2] = server.stop
        code = main(_args(server.port, "--episodes", "3", "--reconnect-timeout", "0.3", *args))
    out, err = capsys.readouterr()
    assert code == 1
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "lost the server" in errors[0] and "could not reconnect within 0.3 s" in errors[0]
    assert "Traceback" not in err
    (arm,) = ARMS
    assert arm.resets == [100_000]  # the arm was not moved to start another episode
    assert arm.stopped == 1
    (episode,) = [json.loads(x) for x in out.splitlines()]
    assert episode["fresh"] == 2 and episode["held"] >= 1 and episode["connected"] is False
    return errors[0], arm


def test_lost_server_mid_episode_holds_then_stops_the_arm_and_exits_1(capsys, monkeypatch):
    monkeypatch.setattr(Arm, "length", 10**6)
    error, arm = _lost_run(capsys, "--rate", "100")
    assert "in episode 0" in error
    assert len(arm.applied) >= 2 + 20  # held at 100 Hz for the 0.3 s it tried to reconnect
    assert all(a.tolist() == [0, 0, 0, 0, 0, 0, 1.0] for a in arm.applied[2:])


def test_lost_server_at_the_end_of_an_episode_starts_no_other(capsys):
    error, arm = _lost_run(capsys)
    assert "between episodes 0 and 1" in error and len(arm.applied) == Arm.length


@pytest.mark.parametrize(
    "spec, match",
    [
        ("nosuch_module_xyz:Arm", "cannot import module 'nosuch_module_xyz'"),
        ("mymod", "must be 'sim' or 'module:Class'"),
        ("os:NoSuchArm", "module 'os' has no class 'NoSuchArm'"),
        (":Arm", "must be 'sim' or 'module:Class'"),
    ],
)
def test_unusable_adapter_is_one_line_and_exit_2(spec, match, capsys):
    # Port 9 (discard) has no server here: the adapter is checked before any connection is tried.
    assert main(["--server", "ws://127.0.0.1:9", "--robot", spec, "--retries", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and match in err


def test_wrapper_script_and_console_script():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts/run_robot.py"), "--robot", "mymod"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 2 and r.stderr.startswith("error: --robot must be") and "Traceback" not in r.stderr
    (ep,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "s2robot-robot"]
    assert ep.value == "s2robot_client.runtime:main"


def test_client_package_imports_no_torch_no_s2robot_no_simulator():
    code = (
        "import sys, s2robot_client, s2robot_client.runtime; "
        "bad = {m.split('.')[0] for m in sys.modules} & {'torch', 's2robot', 'envs', 'mujoco', 'robosuite'}; "
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
