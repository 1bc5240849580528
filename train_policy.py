"""Train a behaviour-cloning head on frozen S² features (the installed ``s2robot-train``).

    python train_policy.py encoder=mvp_b scales=[1,2]
    python train_policy.py +experiment=demo_cpu
    torchrun --nproc_per_node=2 train_policy.py hydra.run.dir=runs/ddp ...   # data-parallel

Evaluation's env workers are spawned and re-import this file: it stays a thin, light entry.
"""

from s2robot.commands.train_policy import main

if __name__ == "__main__":
    main()
