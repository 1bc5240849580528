"""The simulator an imported dataset can be evaluated in (``s2robot-import --sim cube_pick``).

robomimic's Lift datasets are robosuite's Lift task, which CubePick-v0 is: a store imported from
one, with ``--sim cube_pick``, records in its ``env`` attrs CubePick configured as the dataset was
collected, so that training takes that env (s2robot/training/inputs.py) and evaluation rolls the
policy out with the dataset's cameras, image size, control rate and cube placement.

robosuite Lift's own placement (``Lift._load_model``): the cube centre uniform in [-0.03, 0.03] m
around the table centre in x and y, yaw uniform over the full turn (``rotation=None`` draws
[0, 2 pi); CubePick's [-pi, pi] is the same distribution). Robot start noise: robosuite's "default"
initialization noise, gaussian 0.02 rad, CubePick's init_noise default.

What is refused, one line each: a dataset of another task, robot or controller; a store camera that
is not a camera of robosuite's Lift scene, or named otherwise than the dataset camera it holds;
frames that are not square and of one size; a proprio that is not CubePick's (eef pos, eef quat
xyzw, finger joints); an action space other than CubePick's; dataset episode numbers that reach
the evaluation seeds (the store keeps each demo's number in its seed slot)."""

from __future__ import annotations

from typing import Any

from s2robot.data.formats import FormatError
from s2robot.data.formats.mapping import ROBOMIMIC_LIFT, KeyMapping
from s2robot.data.formats.source import Source
from s2robot.robot_description import RobotDescription, RobotDescriptionError, cube_pick

SIMS = ("cube_pick",)
ROBOMIMIC_LIFT_PLACEMENT = {
    "x_range": [-0.03, 0.03],
    "y_range": [-0.03, 0.03],
    "yaw_range": [-3.14159265, 3.14159265],  # written as CubePick's default, so configs compare equal
}
# robomimic's evaluation horizon for Lift (its paper configs); CubePick's 120 would cut off the
# slower human demonstrations of the multi-human (mh) datasets.
ROBOMIMIC_LIFT_HORIZON = 400


def sim_env(sim: str, source: Source, mapping: KeyMapping, robot: RobotDescription) -> dict[str, Any]:
    """The env config (as ``s2robot.data.collect.env_config_dict`` records it) of simulator
    ``sim`` set up like the dataset, after every check that the store is that simulator's data."""
    if sim not in SIMS:
        raise FormatError(f"--sim {sim}: unknown simulator; choose one of {', '.join(SIMS)}")
    where = f"--sim {sim}: {source.path}"
    if source.format != "robomimic":
        raise FormatError(f"{where} is a {source.format} dataset; --sim {sim} takes a robomimic Lift dataset")
    _check_robomimic_lift(where, source)
    size = _check_cameras(where, mapping, robot)
    if tuple(mapping.proprio or ()) != ROBOMIMIC_LIFT.proprio:
        raise FormatError(
            f"{where}: proprio from {list(mapping.proprio or ())}, CubePick's proprio is "
            f"{list(ROBOMIMIC_LIFT.proprio)} in that order; drop --proprio or give those keys"
        )
    freq = float(robot.control_hz)
    if not freq.is_integer():
        raise FormatError(f"{where}: control_freq {freq:g} Hz is not a whole number, which CubePick's env needs")
    try:
        cube_pick(cameras=tuple(robot.cameras), image_size=size, control_hz=freq).check_matches(robot, what=where)
    except RobotDescriptionError as e:
        raise FormatError(f"{e}; import without --sim to train without rollout evaluation") from e
    _check_seeds(where, source)
    from s2robot.data.collect import env_config_dict

    return env_config_dict(
        {
            "id": "CubePick-v0",
            "cameras": list(robot.cameras),
            "image_size": size,
            "horizon": ROBOMIMIC_LIFT_HORIZON,
            "control_freq": int(freq),
            # robosuite's default rendering (multisampling, floor reflection), as the dataset's frames were made
            "fast_render": False,
            "placement": ROBOMIMIC_LIFT_PLACEMENT,
        }
    )


def _check_robomimic_lift(where: str, source: Any) -> None:
    env_args = getattr(source, "env_args", {}) or {}
    kwargs = env_args.get("env_kwargs", {}) or {}
    robots = kwargs.get("robots", [])
    robots = [robots] if isinstance(robots, str) else list(robots)
    found = {
        "task": env_args.get("env_name"),
        "robots": robots,
        "controller": getattr(source, "controller", None),
    }
    want = {"task": "Lift", "robots": ["Panda"], "controller": "OSC_POSE"}
    for key, value in want.items():
        if found[key] != value:
            raise FormatError(
                f"{where}: env_args say {key} {found[key]!r}, CubePick-v0 is robosuite Lift with one Panda under "
                f"OSC_POSE ({key} {value!r}); import without --sim to train without rollout evaluation"
            )


def _check_cameras(where: str, mapping: KeyMapping, robot: RobotDescription) -> int:
    """Each store camera is the Lift camera of that name (the one that rendered the dataset key it
    holds), all frames square and of one size; returns that size."""
    from s2robot.config.checks import CAMERAS

    if not robot.cameras:
        raise FormatError(f"{where}: no camera mapped; CubePick renders at least one (e.g. agentview_image)")
    for key, cam in (mapping.cameras or {}).items():
        if cam not in CAMERAS:
            raise FormatError(
                f"{where}: store camera {cam!r} is not a camera of robosuite's Lift scene ({', '.join(CAMERAS)}); "
                f"name it as the camera that rendered {key}, e.g. --camera {key}={key.removesuffix('_image')}"
            )
        rendered = key.removesuffix("_image")
        if rendered in CAMERAS and rendered != cam:
            raise FormatError(
                f"{where}: {key} holds robosuite's {rendered} view, mapped to store camera {cam!r}, which the "
                f"simulator would render from its own {cam} camera; map it as --camera {key}={rendered}"
            )
    sizes = {hw for hw in robot.cameras.values()}
    if len(sizes) != 1 or any(h != w for h, w in sizes):
        raise FormatError(
            f"{where}: cameras of {sorted(sizes)} pixels; CubePick renders square frames of one size for all "
            f"cameras, resize the dataset's frames first"
        )
    return next(iter(sizes))[0]


def _check_seeds(where: str, source: Any) -> None:
    """The store keeps each demo's number as its seed; evaluation seeds start at EVAL_SEED_START,
    and seeds below it are demonstrations (collect's resume, DAgger and ``seed_range`` rely on it)."""
    from envs.seeds import EVAL_SEED_START

    numbers = [int(d.split("_")[-1]) for d in getattr(source, "demos", ())]
    if numbers and (max(numbers) >= EVAL_SEED_START or min(numbers) < 0):
        raise FormatError(
            f"{where}: demo numbers up to {max(numbers)} reach the evaluation seeds (>= {EVAL_SEED_START}) "
            f"or are negative; renumber the demos below {EVAL_SEED_START} or import without --sim"
        )
