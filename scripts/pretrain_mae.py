"""MAE pre-training of a registry ViT on robot frames (MVP recipe), single-scale or S².

The same as the installed command; see ``s2robot.commands.pretrain_mae``.
"""

from s2robot.commands.pretrain_mae import main

if __name__ == "__main__":
    main()
