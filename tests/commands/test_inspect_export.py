"""s2robot-inspect (with --verify) and s2robot-export: summaries, damage reports, and every user
error as one ``error: ...`` line with exit code 2."""

import sys

import numpy as np
import pytest

from s2robot.commands import export_episode, inspect_store
from s2robot.data.replay_buffer import ReplayBuffer


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer.create(tmp_path / "s.zarr", attrs={"env": {"image_size": 16}})
    for seed, length in enumerate((6, 4)):
        buffer.add_episode(
            {
                "agentview": rng.integers(0, 256, (length, 16, 16, 3), dtype=np.uint8),
                "proprio": rng.normal(size=(length, 9)).astype(np.float32),
            },
            seed=seed,
        )
    return tmp_path / "s.zarr"


def run(module, monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [module.__name__, *map(str, argv)])
    try:
        module.main()
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


# -- inspect -------------------------------------------------------------------------------------


def test_inspect_summary_and_clean_verify(store, monkeypatch, capsys):
    code, out, _ = run(inspect_store, monkeypatch, capsys, store, "--verify")
    assert code == 0
    assert "episodes: 2" in out and "steps:    10" in out and "(16, 16, 3)" in out
    assert out.strip().endswith("verify: every chunk of every committed step is present and decodes")


def test_inspect_verify_lists_each_damage_and_exits_1(store, monkeypatch, capsys):
    (store / "data" / "agentview" / "c" / "7" / "0" / "0" / "0").unlink()  # episode 1
    chunk = store / "data" / "agentview" / "c" / "2" / "0" / "0" / "0"  # episode 0
    chunk.write_bytes(chunk.read_bytes()[:-3] + b"xyz")
    code, out, _ = run(inspect_store, monkeypatch, capsys, store, "--verify")
    assert code == 1
    damaged = [line for line in out.splitlines() if line.startswith("damaged: ")]
    assert damaged == [
        "damaged: data/agentview rows 2..2 (episode 0): does not decode (ValueError: Stored and computed "
        "checksum do not match)",
        "damaged: data/agentview rows 7..7 (episode 1): chunk file missing",
    ]
    assert "collect the store again" in out.splitlines()[-1]
    code, out, _ = run(inspect_store, monkeypatch, capsys, store)  # without --verify: metadata only
    assert code == 0 and "damaged" not in out


def test_inspect_missing_store(tmp_path, monkeypatch, capsys):
    code, _, err = run(inspect_store, monkeypatch, capsys, tmp_path / "missing.zarr")
    assert_one_line_error(code, err, "missing.zarr", "collect_demos")
    assert not (tmp_path / "missing.zarr").exists()


def test_inspect_not_a_store(tmp_path, monkeypatch, capsys):
    (tmp_path / "plain").mkdir()
    code, _, err = run(inspect_store, monkeypatch, capsys, tmp_path / "plain")
    assert_one_line_error(code, err, "plain")


# -- export --------------------------------------------------------------------------------------


def test_export_writes_the_episode(store, tmp_path, monkeypatch, capsys):
    code, out, err = run(export_episode, monkeypatch, capsys, store, "--episode", "-1", "--out", tmp_path / "e.mp4")
    assert code == 0, err
    assert "4 frames of 16x16" in out and (tmp_path / "e.mp4").stat().st_size > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.mp4", "s.zarr"]  # no temporary left


@pytest.mark.parametrize(
    "args, words",
    [
        (["--episode", "2"], ["no episode 2", "has 2", "--episode 0..1"]),
        (["--episode", "-3"], ["no episode -3"]),
        (["--key", "robot0_eye_in_hand"], ["robot0_eye_in_hand", "lacks"]),
        (["--key", "proprio"], ["proprio", "not frames"]),
    ],
    ids=["episode-past-end", "episode-before-start", "missing-key", "not-an-image-key"],
)
def test_export_store_mistakes(store, tmp_path, monkeypatch, capsys, args, words):
    code, _, err = run(export_episode, monkeypatch, capsys, store, "--out", tmp_path / "e.mp4", *args)
    assert_one_line_error(code, err, *words)
    assert not (tmp_path / "e.mp4").exists()


def test_export_missing_store(tmp_path, monkeypatch, capsys):
    code, _, err = run(export_episode, monkeypatch, capsys, tmp_path / "nope.zarr", "--out", tmp_path / "e.mp4")
    assert_one_line_error(code, err, "nope.zarr")


def test_export_missing_output_folder(store, tmp_path, monkeypatch, capsys):
    code, _, err = run(export_episode, monkeypatch, capsys, store, "--out", tmp_path / "no" / "such" / "e.mp4")
    assert_one_line_error(code, err, "--out", "does not exist")
    assert not (tmp_path / "no").exists()


def test_export_unknown_video_suffix(store, tmp_path, monkeypatch, capsys):
    code, _, err = run(export_episode, monkeypatch, capsys, store, "--out", tmp_path / "e.gifx")
    assert_one_line_error(code, err, "e.gifx", ".mp4")


def test_export_damaged_episode_names_it_and_keeps_the_old_video(store, tmp_path, monkeypatch, capsys):
    (tmp_path / "e.mp4").write_bytes(b"an earlier export")
    (store / "data" / "agentview" / "c" / "8" / "0" / "0" / "0").unlink()
    code, _, err = run(export_episode, monkeypatch, capsys, store, "--episode", "1", "--out", tmp_path / "e.mp4")
    assert_one_line_error(code, err, "data/agentview rows 8..8 (episode 1): chunk file missing", "--verify")
    assert (tmp_path / "e.mp4").read_bytes() == b"an earlier export"
