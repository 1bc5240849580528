"""Import demonstrations of another format (LeRobot, robomimic) into a store.

The same as the installed command; see ``s2robot.commands.import_dataset``.
"""

from s2robot.commands.import_dataset import main

if __name__ == "__main__":
    main()
