"""Paired comparisons of the study's rows: the paper's question asked so that it can fail.

Every cell of the study is trained on the same demonstrations and evaluated on the same
evaluation seeds (the same cube placements), so two rows can be compared episode by episode:
(training seed, evaluation seed) -> success in each; pairing by training seed too keeps each seed's
policy against its counterpart of the same seed. The test is the exact McNemar test
on the discordant episodes (one row succeeds, the other fails), two-sided.

The pairs the paper compares:
- each encoder with S² against the same encoder at ``[1]`` (do more scales help?);
- a smaller encoder with S² against a larger encoder at ``[1]`` (does the small model looking at more
  scales match or beat the larger one?), where "larger" means more parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

ALPHA = 0.05


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (a binomial test at 1/2)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(a: dict, b: dict, why: str = "") -> dict | None:
    """Rows ``a`` and ``b`` (report rows, with their ``_outcomes``: (training seed, evaluation seed)
    -> success) paired on their shared episodes; None when they share none. ``why``: what the pair
    asks."""
    oa, ob = a["_outcomes"], b["_outcomes"]
    shared = sorted(set(oa) & set(ob))
    if not shared:
        return None
    a_only = sum(oa[k] and not ob[k] for k in shared)
    b_only = sum(ob[k] and not oa[k] for k in shared)
    p = mcnemar_exact(a_only, b_only)
    ka, kb = sum(oa[k] for k in shared), sum(ob[k] for k in shared)
    if p >= ALPHA:
        verdict = "no difference detected"
    else:
        verdict = f"{label(a)} better" if a_only > b_only else f"{label(b)} better"
    return {
        "a": label(a),
        "b": label(b),
        "why": why,
        "episodes": len(shared),
        "a_successes": ka,
        "b_successes": kb,
        "a_only": a_only,
        "b_only": b_only,
        "p": p,
        "verdict": verdict,
    }


def label(row: dict) -> str:
    if row["kind"] != "vision":
        return f"{row['kind']} baseline"
    return f"{row['encoder']} {list(row['scales'])}"


def paper_pairs(rows: Sequence[dict]) -> list[tuple[dict, dict, str]]:
    """The pairs worth testing among the vision rows of pre-trained (not random) encoders."""
    vision = [r for r in rows if r["kind"] == "vision" and not r["random_weights"]]
    pairs = []
    for a in vision:
        if list(a["scales"]) == [1]:
            continue
        for b in vision:
            if list(b["scales"]) != [1] or b["img_size"] != a["img_size"]:
                continue
            if b["encoder"] == a["encoder"] and b["weights_id"] == a["weights_id"]:
                pairs.append((a, b, "S² against its own [1]"))
            elif b.get("params", 0) > a.get("params", 0):
                cheaper = "fewer" if a.get("gmacs", 0) <= b.get("gmacs", 0) else "more"
                pairs.append((a, b, f"smaller with S² against larger at [1] ({cheaper} GMACs)"))
    return pairs


def paired_comparisons(rows: Sequence[dict]) -> list[dict]:
    out = []
    for a, b, why in paper_pairs(rows):
        if (result := compare(a, b, why)) is not None:
            out.append(result)
    return out


def markdown_lines(comparisons: Sequence[dict]) -> list[str]:
    lines = [
        "## Paired comparisons",
        "",
        "Episode by episode on the shared (training seed, evaluation seed) pairs; *only A* / *only B*: "
        "episodes one row picks and the other does not; p: exact two-sided McNemar test on those; "
        f"a difference is claimed only at p < {ALPHA}.",
        "",
    ]
    if not comparisons:
        return lines + [
            "No pair of finished pre-trained rows to compare (the paper's pairs need an encoder at [1]).",
            "",
        ]
    lines += [
        "| A | B | what | episodes | A k | B k | only A | only B | p | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c['a']} | {c['b']} | {c['why']} | {c['episodes']} | {c['a_successes']} | {c['b_successes']} "
            f"| {c['a_only']} | {c['b_only']} | {c['p']:.2g} | {c['verdict']} |"
        )
    return lines + [""]
