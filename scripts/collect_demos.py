"""Collect scripted-expert demonstrations into a Zarr store (resumes an existing one).

The same as the installed command; see ``s2robot.commands.collect_demos``.
"""

from s2robot.commands.collect_demos import main

if __name__ == "__main__":
    main()
