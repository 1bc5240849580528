"""The ``policy`` group: one schema per head (configs/policy/mlp.yaml, transformer.yaml), so a key
of the other head (``policy.num_heads`` with the mlp) is refused instead of reaching its constructor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks

# policies.POLICIES and policies.obs_encoder.VISUAL_POOLS (a test keeps them equal; the policies
# package imports torch)
POLICY_NAMES = ("mlp", "transformer")
VISUAL_POOLS = ("none", "attn", "keypoints")


@dataclass
class MLPPolicySchema:
    name: str = MISSING
    n_obs_steps: int = MISSING
    horizon: int = MISSING
    n_action_steps: int = MISSING
    temporal_ensemble: bool = MISSING
    hidden: int = MISSING
    depth: int = MISSING
    dropout: float = MISSING
    visual_pool: str = MISSING


@dataclass
class TransformerPolicySchema(MLPPolicySchema):
    num_heads: int = MISSING


def validate_policy(policy: Any, encoder_feature: str | None, prefix: str = "policy.") -> None:
    """``encoder_feature``: the run's ``encoder.feature``, or None when the head sees no vision."""
    checks.choice(policy, "name", POLICY_NAMES, prefix=prefix)
    expected = "transformer" if "num_heads" in policy else "mlp"
    checks.require(
        policy.name == expected,
        prefix + "name",
        policy.name,
        f"must match the policy group: choose the head with policy={policy.name}, not policy.name=",
    )
    checks.number(policy, "horizon", 1, prefix=prefix)
    checks.number(
        policy,
        "n_action_steps",
        1,
        policy.horizon,
        prefix=prefix,
        hint=f"actions executed per prediction, at most policy.horizon={policy.horizon}",
    )
    checks.number(policy, "n_obs_steps", 1, prefix=prefix)
    if policy.name == "mlp":
        checks.require(
            policy.n_obs_steps == 1,
            prefix + "n_obs_steps",
            policy.n_obs_steps,
            "the mlp head is memoryless: use policy.n_obs_steps=1, or policy=transformer for history",
        )
    checks.number(policy, "hidden", 1, prefix=prefix)
    checks.number(policy, "depth", 1, prefix=prefix)
    checks.number(policy, "dropout", 0, 1, high_open=True, prefix=prefix)
    checks.choice(policy, "visual_pool", VISUAL_POOLS, prefix=prefix)
    if encoder_feature is not None:
        if encoder_feature == "tokens":
            checks.require(
                policy.visual_pool != "none",
                prefix + "visual_pool",
                policy.visual_pool,
                "encoder.feature=tokens needs a pool over the token grid: policy.visual_pool=attn or "
                "keypoints (or encoder.feature=cls)",
            )
        else:
            checks.require(
                policy.visual_pool == "none",
                prefix + "visual_pool",
                policy.visual_pool,
                f"pools over the token grid: set encoder.feature=tokens (now {encoder_feature}), "
                f"or policy.visual_pool=none",
            )
    if policy.visual_pool == "attn":  # policies.obs_encoder.AttentionPool: 4 heads over policy.hidden
        checks.require(
            policy.hidden % 4 == 0,
            prefix + "hidden",
            policy.hidden,
            "must be a multiple of 4 with policy.visual_pool=attn (4 attention heads)",
        )
    if "num_heads" in policy:
        checks.number(policy, "num_heads", 1, prefix=prefix)
        checks.require(
            policy.hidden % policy.num_heads == 0,
            prefix + "num_heads",
            policy.num_heads,
            f"must divide policy.hidden={policy.hidden}",
        )
