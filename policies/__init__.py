"""Behaviour-cloning policy heads on frozen S² features + proprioception."""

from __future__ import annotations

from policies.base import BCPolicy
from policies.mlp import MLPPolicy
from policies.transformer import TransformerPolicy

POLICIES = {"mlp": MLPPolicy, "transformer": TransformerPolicy}


def make_policy(name: str, input_shapes: dict[str, tuple[int, ...]], action_dim: int, **kwargs) -> BCPolicy:
    """Build the head ``name`` (``mlp`` | ``transformer``); kwargs are the policy config's fields."""
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known policies: {', '.join(POLICIES)}") from None
    return cls(input_shapes, action_dim, **kwargs)


__all__ = ["BCPolicy", "MLPPolicy", "TransformerPolicy", "POLICIES", "make_policy"]
