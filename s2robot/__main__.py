"""``python -m s2robot``: the commands this package installs, and what each does."""

from s2robot.cli import COMMANDS


def main() -> None:
    print("s2robot commands (each takes --help; Hydra ones take key=value overrides):")
    for name, (module, what) in COMMANDS.items():
        print(f"  s2robot-{name:<9} {what}   [python -m {module}]")
    print("  s2robot-robot     drive a robot from the action server (the s2robot-client package)")


if __name__ == "__main__":
    main()
