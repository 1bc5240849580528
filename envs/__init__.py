"""Simulated environments. Importing registers `CubePick-v0` with gymnasium (no simulator is created)."""

from gymnasium.envs.registration import register, registry

from envs.cube_pick import CubePickEnv, make_env
from envs.seeds import DEMO_SEED_START, EVAL_SEED_START

if "CubePick-v0" not in registry:
    register(id="CubePick-v0", entry_point="envs.cube_pick:CubePickEnv")

__all__ = ["CubePickEnv", "make_env", "DEMO_SEED_START", "EVAL_SEED_START"]
