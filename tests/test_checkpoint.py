import argparse
import os
from pathlib import Path

import pytest
import torch

from s2robot.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from s2robot.errors import UserError


class _RunsCode:
    """Unpickling this creates a file: what a hostile checkpoint could do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_round_trip_of_tensors_and_plain_values(tmp_path):
    save_checkpoint(tmp_path / "checkpoint.pt", {"state_dict": {"w": torch.ones(2)}, "inputs": ["proprio"]})
    ckpt = load_checkpoint(tmp_path)
    assert torch.equal(ckpt["state_dict"]["w"], torch.ones(2)) and ckpt["inputs"] == ["proprio"]


@pytest.mark.parametrize("make", [lambda marker: argparse.Namespace(lr=1e-4), _RunsCode])
def test_checkpoint_holding_a_pickled_object_is_refused_unrun(tmp_path, make):
    marker = tmp_path / "code-ran"
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"state_dict": {"w": torch.ones(2)}, "args": make(marker)})
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert isinstance(e.value, UserError)
    msg = str(e.value)
    assert "pickled Python object" in msg and str(path) in msg and "\n" not in msg
    assert ("argparse.Namespace" in msg) if make is not _RunsCode else ("mkdir" in msg)
    assert not marker.exists()


def test_damaged_and_foreign_files_are_refused_in_one_line(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as e:
        load_checkpoint(junk)
    assert "\n" not in str(e.value)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an s2robot policy checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
