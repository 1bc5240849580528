"""Typed schemas of the Hydra configs in configs/, and the range checks run right after composition.

Each primary yaml starts its defaults list with its schema (``- train_policy_schema``) and each
group yaml with its group's (``- /schema/env@_here_``), so Hydra refuses a misspelt key or a value
of the wrong type while composing. ``validate(config_name, cfg)`` then checks ranges and names,
raising ``s2robot.errors.ConfigError`` with one line naming the key, the value and what is allowed.

Schemas are registered in Hydra's ConfigStore by ``register_configs()``, which every Hydra entry
(s2robot.cli.hydra_command) and anything composing configs itself (tests) calls first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from s2robot.config.collect import CollectDemosSchema, validate_collect_demos
from s2robot.config.dagger import DaggerSchema, validate_dagger
from s2robot.config.encoder import EncoderSchema
from s2robot.config.env import EnvSchema
from s2robot.config.evaluate import EvalPolicySchema, validate_eval_policy
from s2robot.config.policy import MLPPolicySchema, TransformerPolicySchema
from s2robot.config.pretrain import PretrainMAESchema, validate_pretrain_mae
from s2robot.config.probe import ProbeEncoderSchema, validate_probe_encoder
from s2robot.config.serve import ServePolicySchema, validate_serve_policy
from s2robot.config.study import ScalingStudySchema, validate_scaling_study
from s2robot.config.train import TrainPolicySchema, validate_train_policy

# primary config name -> (schema, range checks); the schema is stored as "<name>_schema"
PRIMARY: dict[str, tuple[type, Callable[[Any], None]]] = {
    "train_policy": (TrainPolicySchema, validate_train_policy),
    "collect_demos": (CollectDemosSchema, validate_collect_demos),
    "eval_policy": (EvalPolicySchema, validate_eval_policy),
    "pretrain_mae": (PretrainMAESchema, validate_pretrain_mae),
    "probe_encoder": (ProbeEncoderSchema, validate_probe_encoder),
    "scaling_study": (ScalingStudySchema, validate_scaling_study),
    "serve_policy": (ServePolicySchema, validate_serve_policy),
    "dagger": (DaggerSchema, validate_dagger),
}
# group schemas, under their own group so they never show up as an option of env/encoder/policy
GROUPS: dict[str, type] = {
    "env": EnvSchema,
    "encoder": EncoderSchema,
    "mlp_policy": MLPPolicySchema,
    "transformer_policy": TransformerPolicySchema,
}
SCHEMA_GROUP = "schema"


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent: storing again replaces the entry)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, (schema, _) in PRIMARY.items():
        cs.store(name=f"{name}_schema", node=schema)
    for name, schema in GROUPS.items():
        cs.store(group=SCHEMA_GROUP, name=name, node=schema)


def validate(config_name: str, cfg: Any) -> None:
    """The range checks of the primary config ``config_name`` (ConfigError on the first bad value)."""
    PRIMARY[config_name][1](cfg)


__all__ = ["PRIMARY", "GROUPS", "register_configs", "validate"]

# Registered on import as well, so that anything importing a schema (the training and pre-training
# loops, tests composing configs) composes the typed configs without a separate call.
register_configs()
