import math

import pytest

from s2robot.training.schedule import warmup_cosine


def test_warmup_is_linear_and_reaches_peak():
    assert [warmup_cosine(s, 4, 100, peak=2.0) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]


def test_cosine_decays_to_floor_and_holds():
    assert warmup_cosine(10, 10, 110, peak=1.0, floor=0.1) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110, peak=1.0, floor=0.1) == pytest.approx(0.55)
    assert warmup_cosine(110, 10, 110, peak=1.0, floor=0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 110, peak=1.0, floor=0.1) == pytest.approx(0.1)


def test_same_numbers_as_the_trainers_had_before():
    # BC's LambdaLR factor and MAE's lr_at, as written before they shared this function
    def bc_old(step, warmup, total):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    def mae_old(step, warmup, total, lr, min_lr):
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    for step in range(0, 1300, 7):
        assert warmup_cosine(step, 200, 1000) == bc_old(step, 200, 1000)
        assert warmup_cosine(step, 150, 1100, peak=1e-3, floor=1e-5) == mae_old(step, 150, 1100, 1e-3, 1e-5)
