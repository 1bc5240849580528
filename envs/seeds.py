"""Seed ranges: demonstrations, evaluation and DAgger rollouts never share a cube placement.

demos     [0, 100000)
eval      [100000, 200000)
DAgger    [200000, ...): round k (k >= 1), episode i -> 200000 + k * 10000 + i
"""

DEMO_SEED_START = 0
EVAL_SEED_START = 100_000
DAGGER_SEED_START = 200_000
DAGGER_SEEDS_PER_ROUND = 10_000


def check_demo_seeds(seed_start: int, n_seeds: int) -> None:
    """Raise if demo seeds [seed_start, seed_start + n_seeds) reach into the evaluation range."""
    if seed_start < 0 or seed_start + n_seeds > EVAL_SEED_START:
        raise ValueError(
            f"demo seeds [{seed_start}, {seed_start + n_seeds}) overlap the evaluation seeds "
            f"(>= {EVAL_SEED_START}) or are negative; choose seed_start so that all demo seeds "
            f"stay in [0, {EVAL_SEED_START})"
        )


def dagger_seeds(round_index: int, n_episodes: int) -> list[int]:
    """The env seeds of DAgger round ``round_index`` (>= 1): its own block of the DAgger range."""
    if round_index < 1:
        raise ValueError(f"DAgger rounds count from 1 (round 0 is the expert demonstrations), got {round_index}")
    if not 0 <= n_episodes <= DAGGER_SEEDS_PER_ROUND:
        raise ValueError(f"a DAgger round runs at most {DAGGER_SEEDS_PER_ROUND} episodes, asked for {n_episodes}")
    start = DAGGER_SEED_START + round_index * DAGGER_SEEDS_PER_ROUND
    return list(range(start, start + n_episodes))


def seed_range(seed: int) -> str:
    """Which range a seed belongs to: demo, eval or dagger."""
    if DEMO_SEED_START <= seed < EVAL_SEED_START:
        return "demo"
    if EVAL_SEED_START <= seed < DAGGER_SEED_START:
        return "eval"
    return "dagger" if seed >= DAGGER_SEED_START else "invalid"
