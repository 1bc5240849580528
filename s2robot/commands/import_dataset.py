"""Import demonstrations of another format into a demonstration store (LeRobotDataset v3.0/v2.x
folder, robomimic .hdf5), one atomic episode at a time; running it again resumes.

s2robot-import lift_image.hdf5 data/lift.zarr                     # robomimic Lift defaults
s2robot-import my_lerobot_dataset/ data/mine.zarr --camera observation.images.top=agentview
s2robot-import data.hdf5 out.zarr --mapping configs/import/robomimic_lift.yaml --action-bounds data
s2robot-import lift_image.hdf5 data/lift.zarr --sim cube_pick     # + the env to evaluate in

--sim cube_pick (robomimic Lift only) records CubePick-v0 set up as the dataset was collected
(its cameras and image size, Lift's cube placement, control rate), so s2robot-train evaluates the
policy in the simulator; a dataset that does not match CubePick is refused.

The mapping (which dataset key becomes which store camera, which keys make proprio, the action
key, the action bounds) comes from --mapping, else the format's defaults (see
s2robot/data/formats/mapping.py); --camera/--proprio/--action/--action-bounds override it.
"""

import argparse

from s2robot.cli import user_errors_exit


@user_errors_exit
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a LeRobot dataset folder or a robomimic .hdf5 file")
    parser.add_argument("out", help="the store to create (or resume)")
    parser.add_argument("--format", default="auto", choices=("auto", "lerobot", "robomimic"))
    parser.add_argument("--mapping", help="a YAML key mapping (e.g. configs/import/robomimic_lift.yaml)")
    parser.add_argument("--camera", action="append", default=[], metavar="KEY=CAMERA", help="repeat per camera")
    parser.add_argument("--proprio", nargs="+", metavar="KEY", help="keys concatenated, in order, into proprio")
    parser.add_argument("--action", metavar="KEY")
    parser.add_argument(
        "--action-bounds",
        metavar="data|LOW,HIGH",
        help="'data': min/max over the dataset; --action-bounds=-1,1 (with =: the value starts with -)",
    )
    parser.add_argument("--filter-key", help="robomimic: import only the demos under mask/<filter-key>")
    parser.add_argument(
        "--sim", choices=("cube_pick",), help="record the simulator env the dataset was made in (robomimic Lift)"
    )
    parser.add_argument("--max-episodes", type=int, help="stop once the store holds this many episodes")
    args = parser.parse_args()

    from s2robot.data.formats.importer import import_dataset, open_source
    from s2robot.data.formats.mapping import DEFAULTS, load_mapping, with_overrides

    source = open_source(args.source, args.format, filter_key=args.filter_key)
    base = load_mapping(args.mapping) if args.mapping else DEFAULTS[source.format]
    mapping = with_overrides(base, args.camera, args.proprio, args.action, args.action_bounds)
    summary = import_dataset(source, args.out, mapping, max_episodes=args.max_episodes, sim=args.sim)
    print(
        f"imported {summary['episodes_added']} episodes from {args.source} ({summary['format']}) into {args.out}: "
        f"{summary['episodes']} episodes, {summary['steps']} steps, robot {summary['robot']!r}"
        + (f"; evaluates in {summary['env']['id']} at {summary['env']['image_size']} px" if summary["env"] else "")
    )


if __name__ == "__main__":
    main()
