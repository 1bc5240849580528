import pytest

from s2robot.study.paired import compare, markdown_lines, mcnemar_exact, paired_comparisons


def test_mcnemar_exact_matches_the_binomial_test():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # all 5 discordant one way: 2 * 0.5^5
    assert mcnemar_exact(46, 8) == pytest.approx(1.4e-7, rel=0.05)  # DART vs clean in RESULTS.md
    assert mcnemar_exact(8, 46) == mcnemar_exact(46, 8)


def row(encoder, scales, outcomes_per_seed, params, gmacs, weights_id="md5:x"):
    """A report row as build_rows makes it: per (training seed, evaluation seed) outcomes."""
    return {
        "kind": "vision",
        "encoder": encoder,
        "scales": scales,
        "img_size": 64,
        "weights_id": weights_id + encoder,
        "random_weights": False,
        "params": params,
        "gmacs": gmacs,
        "_outcomes": {
            (seed, 100_000 + i): success for seed, per in enumerate(outcomes_per_seed) for i, success in enumerate(per)
        },
    }


def test_rows_pair_on_training_and_evaluation_seeds():
    a = row("vit_t", (1, 2), [[True, True, False], [True, False, True]], 5, 0.5)
    b = row("vit_t", (1,), [[False, True, False], [False, False, True]], 5, 0.1)
    c = compare(a, b)
    # seed 0: episode 0 only A; seed 1: episode 0 only A; nothing only B
    assert (c["episodes"], c["a_only"], c["b_only"], c["a_successes"], c["b_successes"]) == (6, 2, 0, 4, 2)
    assert c["p"] == pytest.approx(0.5) and c["verdict"] == "no difference detected"


def test_the_paper_pairs_are_tested_and_a_clear_win_is_claimed():
    win = [[True] * 20, [True] * 20]
    lose = [[False] * 20, [False] * 20]
    rows = [
        row("vit_t", (1,), lose, 5, 0.1),
        row("vit_t", (1, 2), win, 5, 0.5),
        row("vit_s", (1,), lose, 22, 0.4),
        {"kind": "blind", "encoder": "blind", "scales": (), "random_weights": False},
    ]
    found = {(c["a"], c["b"]): c for c in paired_comparisons(rows)}
    assert set(found) == {("vit_t [1, 2]", "vit_t [1]"), ("vit_t [1, 2]", "vit_s [1]")}
    against_s = found[("vit_t [1, 2]", "vit_s [1]")]
    assert against_s["why"].startswith("smaller with S² against larger at [1] (more GMACs)")
    assert against_s["a_only"] == 40 and against_s["verdict"] == "vit_t [1, 2] better"
    table = "\n".join(markdown_lines(list(found.values())))
    assert "| vit_t [1, 2] | vit_s [1] |" in table and "vit_t [1, 2] better" in table


def test_random_weight_rows_and_unpaired_runs_are_left_out():
    rows = [
        row("vit_t", (1,), [[True]], 5, 0.1, weights_id="random:seed0"),
        row("vit_t", (1, 2), [[True]], 5, 0.5, weights_id="random:seed0"),
    ]
    for r in rows:
        r["random_weights"] = True
    assert paired_comparisons(rows) == []
    assert "No pair" in "\n".join(markdown_lines([]))
