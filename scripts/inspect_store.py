"""Print a demonstration store's summary: episodes, steps, keys, shapes, dtypes, bytes, env config.

The same as the installed command; see ``s2robot.commands.inspect_store``.
"""

from s2robot.commands.inspect_store import main

if __name__ == "__main__":
    main()
