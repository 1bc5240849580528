"""Which dataset key becomes what in the store: cameras (dataset key -> store camera), the state
keys concatenated in order into ``proprio``, the action key, extra keys copied as they are, and
where the action bounds come from. A YAML file (``configs/import/*.yaml``), the format's default,
or command-line options over either.

Defaults: robomimic Lift (``ROBOMIMIC_LIFT``, the same as ``configs/import/robomimic_lift.yaml``)
maps agentview_image and robot0_eye_in_hand_image to our agentview and robot0_eye_in_hand,
robot0_eef_pos + robot0_eef_quat + robot0_gripper_qpos (3 + 4 + 2) to proprio (CubePick's own
layout), actions to action, bounds [-1, 1] (OSC_POSE). LeRobot (``LEROBOT``): every
observation.images.<name> to <name>, observation.state to proprio, action to action, bounds from
the data's min/max; a dataset our export wrote carries its own mapping back (every key)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from s2robot.data.formats import FormatError

_BOUNDS_HELP = "action_bounds: 'data' (min/max over the dataset), [low, high], or [[low per dim], [high per dim]]"
ROBOT_FIELDS = ("name", "action_kind", "units", "gripper_index", "proprio_names")  # a mapping may set these


@dataclass(frozen=True)
class KeyMapping:
    cameras: dict[str, str] | None = None  # None: the format's own choice (LeRobot: every image feature)
    proprio: tuple[str, ...] | None = None  # None: the format's own choice; () for no proprio
    action: str = "action"
    extra: dict[str, str] = field(default_factory=dict)
    action_bounds: Any = "data"
    robot: dict[str, Any] = field(default_factory=dict)  # RobotDescription fields to set (ROBOT_FIELDS)

    def __post_init__(self) -> None:
        targets = [*(self.cameras or {}).values(), *self.extra.values()]
        for reserved in ("proprio", "action"):
            if reserved in targets:
                raise FormatError(f"key mapping: {reserved!r} is made by the mapping itself, not a camera or extra key")
        if len(set(targets)) != len(targets):
            raise FormatError(f"key mapping: two dataset keys map to the same store key ({targets})")
        unknown = sorted(set(self.robot) - set(ROBOT_FIELDS))
        if unknown:
            raise FormatError(f"key mapping: robot keys {unknown} cannot be set here; allowed: {list(ROBOT_FIELDS)}")
        bounds(self.action_bounds, 1)  # shape checked once the action dimension is known

    def to_dict(self) -> dict[str, Any]:
        return {
            "cameras": None if self.cameras is None else dict(self.cameras),
            "proprio": None if self.proprio is None else list(self.proprio),
            "action": self.action,
            "extra": dict(self.extra),
            "action_bounds": self.action_bounds,
            "robot": dict(self.robot),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "key mapping") -> KeyMapping:
        unknown = sorted(set(d) - {*cls.__dataclass_fields__, "format"})
        if unknown:
            raise FormatError(f"{where}: unknown keys {unknown}; allowed: {sorted(cls.__dataclass_fields__)}")
        cameras, proprio = d.get("cameras"), d.get("proprio")
        if cameras is not None and not isinstance(cameras, Mapping):
            raise FormatError(f"{where}: cameras must map dataset keys to store camera names")
        if isinstance(proprio, str) or (proprio is not None and not isinstance(proprio, Sequence)):
            raise FormatError(f"{where}: proprio must be a list of dataset keys")
        return cls(
            cameras=None if cameras is None else {str(k): str(v) for k, v in cameras.items()},
            proprio=None if proprio is None else tuple(str(k) for k in proprio),
            action=str(d.get("action", "action")),
            extra={str(k): str(v) for k, v in dict(d.get("extra") or {}).items()},
            action_bounds=d.get("action_bounds", "data"),
            robot=dict(d.get("robot") or {}),
        )


def bounds(spec: Any, dim: int) -> tuple[list[float], list[float]] | None:
    """``spec`` as (low, high) lists of ``dim`` values; None for "data"."""
    if spec == "data":
        return None
    try:
        if len(spec) == 2 and all(isinstance(v, (int, float)) for v in spec):
            return [float(spec[0])] * dim, [float(spec[1])] * dim
        if len(spec) == 2 and all(isinstance(v, Sequence) for v in spec):
            if dim > 1 and (len(spec[0]) != dim or len(spec[1]) != dim):
                raise FormatError(f"key mapping: action_bounds need {dim} values per side, got {spec}")
            return [float(v) for v in spec[0]], [float(v) for v in spec[1]]
    except TypeError:
        pass
    raise FormatError(f"key mapping: action_bounds={spec!r} not understood; {_BOUNDS_HELP}")


ROBOMIMIC_LIFT = KeyMapping(
    cameras={"agentview_image": "agentview", "robot0_eye_in_hand_image": "robot0_eye_in_hand"},
    proprio=("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"),
    action="actions",
    action_bounds=[-1.0, 1.0],
    robot={"action_kind": "osc_pose_delta", "gripper_index": 6},
)
LEROBOT = KeyMapping(cameras=None, proprio=None, action="action", action_bounds="data")
DEFAULTS = {"robomimic": ROBOMIMIC_LIFT, "lerobot": LEROBOT}


def load_mapping(path: str | os.PathLike) -> KeyMapping:
    import yaml

    if not os.path.isfile(path):
        raise FormatError(f"--mapping {path}: no such file; see configs/import/ for examples")
    try:
        with open(path) as f:
            d = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise FormatError(f"--mapping {path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(d, Mapping):
        raise FormatError(f"--mapping {path}: expected a mapping of cameras/proprio/action/...")
    return KeyMapping.from_dict(d, where=f"--mapping {path}")


def with_overrides(
    base: KeyMapping,
    cameras: Sequence[str] = (),
    proprio: Sequence[str] | None = None,
    action: str | None = None,
    action_bounds: str | None = None,
) -> KeyMapping:
    """Command-line options over a mapping: ``cameras`` as SRC=DST items (replacing the mapping's
    cameras), ``proprio`` keys, the action key, and bounds as 'data', 'LOW,HIGH'."""
    changes: dict[str, Any] = {}
    if cameras:
        pairs = [c.split("=", 1) for c in cameras]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            raise FormatError(f"--camera {list(cameras)}: give each as DATASET_KEY=STORE_CAMERA")
        changes["cameras"] = dict(pairs)
    if proprio is not None:
        changes["proprio"] = tuple(proprio)
    if action:
        changes["action"] = action
    if action_bounds:
        if action_bounds == "data":
            changes["action_bounds"] = "data"
        else:
            try:
                low, high = (float(v) for v in action_bounds.split(","))
            except ValueError:
                raise FormatError(
                    f"--action-bounds {action_bounds}: give 'data' or LOW,HIGH (e.g. --action-bounds=-1,1)"
                ) from None
            changes["action_bounds"] = [low, high]
    return replace(base, **changes)
