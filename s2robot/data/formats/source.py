"""What a reader of another format (lerobot.py, robomimic.py) says of its dataset (`Source`) and
the episodes it yields (`SourceEpisode`). Its own module so that the readers and the importer,
which picks a reader, do not import each other."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2robot.data.formats.mapping import KeyMapping
from s2robot.robot_description import RobotDescription


@dataclass
class SourceEpisode:
    index: int  # the dataset's own episode number: resuming counts these
    name: str  # how messages name it, e.g. "demo_3"
    arrays: dict[str, np.ndarray]  # dataset key -> (T, ...) for the mapped keys
    seed: int = -1
    success: bool = True
    round: int = 0


class Source:
    """What a reader says of its dataset; ``episodes`` yields its episodes in order."""

    format: str = ""
    path: str = ""
    fps: float = 20.0
    robot_name: str = ""
    robot: RobotDescription | None = None  # the full description, when the dataset carries one (our export)
    attrs: dict[str, Any] = {}  # store attrs the dataset carries back (our export)

    def resolve(self, mapping: KeyMapping) -> KeyMapping:
        """The format's defaults filled in; a mapped key the dataset lacks raises FormatError."""
        raise NotImplementedError

    def camera_shape(self, key: str) -> tuple[int, int]:
        raise NotImplementedError

    def key_dim(self, key: str) -> int:
        raise NotImplementedError

    def action_range(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def episodes(self, keys: list[str], start: int = 0) -> Iterator[SourceEpisode]:
        raise NotImplementedError
