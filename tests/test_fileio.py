import hashlib

import pytest

from s2robot.fileio import atomic_path, atomic_torch_save, atomic_write, file_hash


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "eval.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]  # no temporary left behind


def test_atomic_write_replaces_when_done(tmp_path):
    target = tmp_path / "x.bin"
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"


def test_atomic_path_gives_writers_a_name_with_the_right_suffix(tmp_path):
    target = tmp_path / "plot.png"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp != target
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png" and len(list(tmp_path.iterdir())) == 1


def test_atomic_torch_save_round_trips(tmp_path):
    import torch

    atomic_torch_save({"a": torch.ones(2)}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True)["a"].tolist() == [1.0, 1.0]


def test_file_hash_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 9000  # spans several read chunks
    (tmp_path / "w").write_bytes(data)
    assert file_hash(tmp_path / "w", chunk=4096) == hashlib.sha256(data).hexdigest()
    assert file_hash(tmp_path / "w", "md5") == hashlib.md5(data).hexdigest()
