"""Serve a trained policy to a robot: WebSocket + MessagePack on loopback by default.

The same as the installed command; see ``s2robot.commands.serve_policy``.
"""

from s2robot.commands.serve_policy import main

if __name__ == "__main__":
    main()
