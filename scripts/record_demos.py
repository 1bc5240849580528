"""Record demonstrations from a robot adapter driven by a teleoperation device (or import a
`s2robot-robot --record` folder).

The same as the installed command; see ``s2robot.commands.record_demos``.
"""

from s2robot.commands.record_demos import main

if __name__ == "__main__":
    main()
