"""RobotDescription: what a robot is, checked; one line for every disagreement."""

import pytest

from s2robot.errors import UserError
from s2robot.robot_description import RobotDescription, RobotDescriptionError, cube_pick, from_store_attrs
from tests.recording.fake_arm import description


def test_round_trip_and_the_client_dict_form():
    d = RobotDescription.from_dict(description())
    assert d.to_dict() == description() and RobotDescription.from_dict(d.to_dict()) == d


def test_stores_without_a_description_read_as_cube_pick():
    d = from_store_attrs({"env": {"cameras": ["agentview", "robot0_eye_in_hand"], "image_size": 32}})
    assert d == cube_pick(("agentview", "robot0_eye_in_hand"), 32)
    with pytest.raises(RobotDescriptionError, match="neither a robot description"):
        from_store_attrs({})


@pytest.mark.parametrize(
    "change,match",
    [
        ({"action_low": [-2.0] * 3}, "need 4 values"),
        ({"action_high": [-3.0] * 4}, "low < high"),
        ({"cameras": {"front": [40]}}, "height, width"),
        ({"gripper_index": 4}, "outside the action"),
        ({"colour": "red"}, "unknown keys"),
    ],
)
def test_malformed_descriptions_are_one_line(change, match):
    with pytest.raises(UserError, match=match):
        RobotDescription.from_dict({**description(), **change})


def test_checks_of_actions_frames_and_another_description():
    import numpy as np

    d = RobotDescription.from_dict(description())
    d.check_action([3, -2, 0, 0])
    with pytest.raises(RobotDescriptionError, match=r"action\[2\]=-2.5 outside"):
        d.check_action([0, 0, -2.5, 0])
    with pytest.raises(RobotDescriptionError, match="expected uint8"):
        d.check_frame("front", np.zeros((40, 41, 3), np.uint8))
    with pytest.raises(RobotDescriptionError, match="disagrees with the store .* on cameras"):
        d.check_matches(RobotDescription.from_dict({**description(), "cameras": {"front": [48, 48]}}))
