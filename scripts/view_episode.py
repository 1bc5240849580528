"""Look at one episode of a store: cameras, proprioception and actions over time.

The same as the installed command; see ``s2robot.commands.view_episode``.
"""

from s2robot.commands.view_episode import main

if __name__ == "__main__":
    main()
