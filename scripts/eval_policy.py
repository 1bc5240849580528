"""Evaluate a trained policy on fixed evaluation seeds: success rate with a 95% interval,

The same as the installed command; see ``s2robot.commands.eval_policy``.
"""

from s2robot.commands.eval_policy import main

if __name__ == "__main__":
    main()
