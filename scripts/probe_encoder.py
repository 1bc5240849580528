"""Linear probe of a frozen S² encoder: does it know where the cube is?

The same as the installed command; see ``s2robot.commands.probe_encoder``.
"""

from s2robot.commands.probe_encoder import main

if __name__ == "__main__":
    main()
