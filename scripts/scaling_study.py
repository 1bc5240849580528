"""The scaling study: model size against S² scales, each cell a train_policy.py run.

The same as the installed command; see ``s2robot.commands.scaling_study``.
"""

from s2robot.commands.scaling_study import main

if __name__ == "__main__":
    main()
