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


def _entry(camera, **kw):
    return {"encoder": "vit_t", "weights": "random:seed0", "scales": [1, 2], "camera": camera, **kw}


def test_camera_fields_round_trip_for_one_and_several_cameras(tmp_path):
    from s2robot.checkpoint import camera_entries, vision_fields, vision_input

    cams = ["robot0_eye_in_hand", "agentview"]  # the policy's order, kept
    entries = [_entry(c, input=vision_input(c, cams)) for c in cams]
    shapes = {"vision_robot0_eye_in_hand": (384,), "vision_agentview": (384,), "proprio": (9,)}
    save_checkpoint(
        tmp_path / "checkpoint.pt", {"inputs": ["vision", "proprio"], "input_shapes": shapes, **vision_fields(entries)}
    )
    ckpt = load_checkpoint(tmp_path)
    assert list(camera_entries(ckpt)) == cams and camera_entries(ckpt)["agentview"]["input"] == "vision_agentview"
    assert ckpt["encoder"]["camera"] == "robot0_eye_in_hand"

    # one camera: the layout from before several cameras (no "cameras", input "vision")
    one = vision_fields([_entry("agentview", input=vision_input("agentview", ["agentview"]))])
    assert set(one) == {"encoder"} and one["encoder"]["input"] == "vision"
    # a checkpoint written before several cameras: no "input" in its entry
    old = {
        "inputs": ["vision", "proprio"],
        "input_shapes": {"vision": (384,), "proprio": (9,)},
        "encoder": _entry("agentview"),
    }
    assert camera_entries(old) == {"agentview": {**_entry("agentview"), "input": "vision"}}
    assert camera_entries({"inputs": ["proprio"], "encoder": None}) == {}
    assert vision_fields([]) == {"encoder": None}


def test_cameras_feeding_inputs_the_head_lacks_are_refused():
    from s2robot.checkpoint import camera_entries

    ckpt = {
        "inputs": ["vision"],
        "input_shapes": {"vision": (384,)},
        "path": "x/checkpoint.pt",
        "cameras": {"agentview": _entry("agentview"), "robot0_eye_in_hand": _entry("robot0_eye_in_hand")},
    }
    with pytest.raises(CheckpointError, match=r"x/checkpoint.pt: its cameras feed head inputs \['vision_agentview'"):
        camera_entries(ckpt)
    with pytest.raises(CheckpointError, match="no encoder entry"):
        camera_entries({"inputs": ["vision"], "encoder": None})


def test_robot_description_of_new_old_and_damaged_checkpoints():
    from s2robot.checkpoint import robot_description
    from tests.recording.fake_arm import description

    assert robot_description({"robot": description(), "env": None}).action_low == (-2.0,) * 4
    # Written before descriptions: CubePick as the env config set it up, the policy's cameras at its size.
    old = robot_description({"env": {"image_size": 64, "control_freq": 10, "cameras": ["agentview"]}, "inputs": []})
    assert (old.action_dim, old.cameras, old.control_hz, old.gripper_index) == (7, {"agentview": (64, 64)}, 10.0, 6)
    with pytest.raises(CheckpointError, match="neither its robot nor its simulator"):
        robot_description({"env": None, "inputs": []})
