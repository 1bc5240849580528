"""What an installed s2robot is: the wheel carries the Hydra tree and the schemas, declares one
console script per command, and its commands compose their configs from the wheel alone."""

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from s2robot.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
# Not copied into the build: the checkout's environments, outputs, data and caches.
_TOP_SKIP = {".git", ".venv", "build", "dist", "data", "runs", "outputs", "multirun", "tests", "docs", "client"}
_CACHES = shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis")


def _skip(directory: str, names: list[str]) -> set[str]:
    top = _TOP_SKIP if Path(directory) == ROOT else set()  # s2robot/data is a package: only the top data/
    return set(_CACHES(directory, names)) | (top & set(names))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # A copy of the tree, so the build's build/ and egg-info never touch the working checkout.
    src = tmp_path_factory.mktemp("src") / "s2robot"
    shutil.copytree(ROOT, src, ignore=_skip)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = out.glob("s2robot-*.whl")
    return path


@pytest.mark.slow
def test_wheel_carries_configs_schemas_and_commands(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert {"configs/train_policy.yaml", "configs/experiment/demo_cpu.yaml", "configs/pretrain/cpu.yaml"} <= configs
    assert len([c for c in configs if c.startswith("configs/encoder/")]) == 8
    assert configs <= names, sorted(configs - names)
    sources = {
        p.relative_to(ROOT).as_posix() for d in ("s2robot/commands", "s2robot/config") for p in (ROOT / d).glob("*.py")
    }
    assert sources <= names, sorted(sources - names)
    assert {"s2robot/cli.py", "s2robot/simulator.py", "configs/__init__.py"} <= names


@pytest.mark.slow
def test_wheel_declares_one_console_script_per_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        (entry_points,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(z.read(entry_points).decode())
    scripts = dict(parser["console_scripts"])
    assert scripts == {f"s2robot-{name}": f"{module}:main" for name, (module, _) in COMMANDS.items()}


@pytest.mark.slow
def test_installed_command_composes_from_the_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    code = "import s2robot; print(s2robot.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.stdout.strip().startswith(str(site)), proc.stdout + proc.stderr  # the wheel's, not the checkout
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "s2robot.commands.train_policy", *a],
        cwd=tmp_path,  # noqa: E731
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    proc = run("+experiment=demo_cpu", "--cfg", "job")
    assert proc.returncode == 0 and "name: vit_t" in proc.stdout, proc.stderr[-2000:]
    proc = run("train.epoch=1")
    assert proc.returncode == 2 and proc.stderr.startswith("error: train.epoch=1: no such key"), proc.stderr


def test_python_m_s2robot_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "s2robot"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name, (module, _) in COMMANDS.items():
        assert f"s2robot-{name}" in proc.stdout and module in proc.stdout
