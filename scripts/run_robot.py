"""Drive a robot from the action server; the same as the installed command `s2robot-robot` of the
client package (see ``s2robot_client.runtime`` and docs/DEPLOYMENT.md).

    python scripts/run_robot.py --server ws://127.0.0.1:8000 --robot sim --episodes 3
    python scripts/run_robot.py --server ws://10.0.0.5:8000 --robot my_arm:PandaAdapter --max-steps 600
"""

import sys

from s2robot_client.runtime import main

if __name__ == "__main__":
    sys.exit(main())
