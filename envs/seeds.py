"""Seed ranges: demonstrations and evaluation never share a cube placement."""

DEMO_SEED_START = 0
EVAL_SEED_START = 100_000


def check_demo_seeds(seed_start: int, n_seeds: int) -> None:
    """Raise if demo seeds [seed_start, seed_start + n_seeds) reach into the evaluation range."""
    if seed_start < 0 or seed_start + n_seeds > EVAL_SEED_START:
        raise ValueError(
            f"demo seeds [{seed_start}, {seed_start + n_seeds}) overlap the evaluation seeds "
            f"(>= {EVAL_SEED_START}) or are negative; choose seed_start so that all demo seeds "
            f"stay in [0, {EVAL_SEED_START})"
        )
