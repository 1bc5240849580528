"""Export a demonstration store as a LeRobotDataset v3.0 folder.

The same as the installed command; see ``s2robot.commands.export_lerobot``.
"""

from s2robot.commands.export_lerobot import main

if __name__ == "__main__":
    main()
