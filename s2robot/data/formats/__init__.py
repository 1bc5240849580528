"""Other people's demonstration formats, in and out of our store.

Import: LeRobotDataset (v3.0, and v2.1) and robomimic HDF5 are read into a store through a key
mapping (``mapping.py``: which dataset key becomes which store camera, which state keys make
``proprio``, which is the action), one atomic episode at a time (``importer.py``); with ``--sim``
the store also records the simulator env a robomimic Lift dataset was made in, so training
evaluates in it (``sim.py``). Export: a store as a LeRobotDataset v3.0 (``lerobot_export.py``),
mp4 per camera (``video.py``)."""

from s2robot.errors import UserError


class FormatError(UserError):
    """A dataset that is not of the format asked for, lacks a mapped key, or holds an episode that
    disagrees with the robot description (resolution, action bounds)."""
