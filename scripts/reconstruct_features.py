"""The paper's reconstruction analysis (section 4.2): a larger encoder's features from a smaller one's S² features.

The same as the installed command; see ``s2robot.commands.reconstruct_features``.
"""

from s2robot.commands.reconstruct_features import main

if __name__ == "__main__":
    main()
