"""A trained checkpoint as a controller: frozen S² encoder + head + action-chunk execution,
for a batch of environments at once (evaluation workers, the action server)."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from s2robot.checkpoint import CheckpointError, checkpoint_hash, load_checkpoint, policy_from_checkpoint
from s2robot.encoders.config import EncoderConfig
from s2robot.errors import UserError
from s2robot.observations import PRIVILEGED_KEYS

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # OSC_POSE deltas and gripper, as the env's action space


class NonFiniteActionError(UserError, ValueError):
    """The controller would have emitted a NaN or infinite action: from non-finite observations,
    encoder features or head output. Clipping keeps NaN, and MuJoCo (or a real arm's driver) given
    one stops driving the motors, so no action is returned at all."""


def _bad_rows(x) -> list[int]:
    """Batch rows holding any NaN or inf."""
    if isinstance(x, torch.Tensor):
        return torch.nonzero(~torch.isfinite(x).reshape(len(x), -1).all(1)).flatten().tolist()
    return np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(1)).tolist()


class PolicyController:
    """``act(obs)`` takes a batch of observations (``key -> B x ...`` numpy: camera frames uint8,
    ``proprio``, and ``cube_pos``/``cube_yaw`` for the privileged baseline) and returns ``B x action_dim``.

    Each env keeps its own observation history (transformer head) and action queue: a chunk of
    ``horizon`` actions is predicted and its first ``n_action_steps`` executed (receding horizon),
    or, with ``temporal_ensemble``, every step's action averages all chunks that cover it.

    Every action is finite: a batch with non-finite inputs raises `NonFiniteActionError` naming the
    env ids and keys before any state changes; non-finite features or head output raise it naming
    the env ids (then ``reset_env`` them: their observation history already holds this step).
    """

    def __init__(self, ckpt: dict, device: str | torch.device = "cpu", encoder_weights: str | None = None,
                 ensemble_decay: float = 0.01):
        self.ckpt = ckpt
        self.device = torch.device(device)
        self.policy = policy_from_checkpoint(ckpt).to(self.device)
        self.inputs = list(ckpt["inputs"])
        self.horizon = self.policy.horizon
        self.n_obs_steps = self.policy.n_obs_steps
        self.n_action_steps = int(ckpt["execution"]["n_action_steps"])
        self.temporal_ensemble = bool(ckpt["execution"]["temporal_ensemble"])
        self.ensemble_decay = ensemble_decay
        self.encoder = self._build_encoder(encoder_weights) if "vision" in self.inputs else None
        self.camera = ckpt["encoder"]["camera"] if self.encoder is not None else None
        self.last_timing: dict[str, float] = {}
        self.reset(1)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", **kw) -> PolicyController:
        runner = cls(load_checkpoint(path), device, **kw)
        runner.checkpoint_hash = checkpoint_hash(path)
        return runner

    checkpoint_hash: str = "unknown"

    def _build_encoder(self, weights: str | None):
        info = self.ckpt["encoder"]
        enc = EncoderConfig.from_checkpoint(info).build(self.device, weights=weights)
        weights = weights or info["weights_arg"]
        if enc.weights_id != info["weights"]:
            raise CheckpointError(
                f"encoder weights {weights} ({enc.weights_id}) are not the ones this policy was trained on "
                f"({info['weights']}); pass the same file with encoder_weights=/path"
            )
        return enc

    @property
    def obs_keys(self) -> list[str]:
        keys = [self.camera] if self.camera else []
        return keys + [k for k in ("proprio", *PRIVILEGED_KEYS) if k in self.inputs]

    @property
    def metadata(self) -> dict:
        env = self.ckpt["env"]
        enc = self.ckpt["encoder"]
        return {
            "obs_keys": self.obs_keys,
            "camera_keys": [self.camera] if self.camera else [],
            "image_shape": [env["image_size"], env["image_size"], 3] if self.camera else None,
            "proprio_dim": int(self.policy.input_shapes["proprio"][0]) if "proprio" in self.inputs else 0,
            # every non-image input and its length (proprio, and the baselines' privileged state)
            "vector_dims": {k: int(self.policy.input_shapes[k][0]) for k in self.inputs if k != "vision"},
            "action_dim": self.policy.action_dim,
            "action_low": [ACTION_LOW] * self.policy.action_dim,
            "action_high": [ACTION_HIGH] * self.policy.action_dim,
            "control_freq": env.get("control_freq", 20),
            "action_horizon": self.horizon,
            "n_action_steps": self.n_action_steps,
            "temporal_ensemble": self.temporal_ensemble,
            "encoder": enc["encoder"] if enc else None,
            "scales": enc["scales"] if enc else None,
            "checkpoint": self.checkpoint_hash,
        }

    # -- per-episode state ------------------------------------------------------------------

    def reset(self, n_envs: int = 1) -> None:
        self.n_envs = n_envs
        self._history = [deque(maxlen=self.n_obs_steps) for _ in range(n_envs)]
        self._queue = [deque() for _ in range(n_envs)]
        self._chunks = [deque(maxlen=self.horizon) for _ in range(n_envs)]  # temporal ensembling

    def reset_env(self, i: int) -> None:
        self._history[i].clear()
        self._queue[i].clear()
        self._chunks[i].clear()

    # -- acting -----------------------------------------------------------------------------

    def _step_inputs(self, obs: dict, rows: list[int]) -> dict[str, torch.Tensor]:
        out = {}
        if self.encoder is not None:
            out["vision"] = self.encoder(np.asarray(obs[self.camera])[rows]).to(self.device)
        for key in ("proprio", *PRIVILEGED_KEYS):
            if key in self.inputs:
                out[key] = torch.as_tensor(np.asarray(obs[key], dtype=np.float32)[rows], device=self.device)
        return out

    def _window(self, i: int) -> dict[str, torch.Tensor]:
        hist = list(self._history[i])
        hist = [hist[0]] * (self.n_obs_steps - len(hist)) + hist  # pad the episode start
        return {k: torch.stack([h[k] for h in hist]) for k in hist[0]}

    def act(self, obs: dict, env_ids=None) -> np.ndarray:
        """Actions for a batch: row j of ``obs`` belongs to env slot ``env_ids[j]`` (default: rows
        are slots 0..B-1, and a new batch size starts fresh episodes for all)."""
        t0 = time.perf_counter()
        b = len(np.asarray(obs[self.obs_keys[0]]))
        if env_ids is None:
            if b != self.n_envs:
                self.reset(b)
            env_ids = range(b)
        env_ids = [int(i) for i in env_ids]
        if len(env_ids) != b or any(not 0 <= i < self.n_envs for i in env_ids):
            raise ValueError(f"env_ids {env_ids} must name {b} of the {self.n_envs} env slots set by reset()")
        self._check_obs(obs, env_ids)
        need = [j for j, i in enumerate(env_ids) if self.temporal_ensemble or not self._queue[i]]
        # A memoryless head only needs frames of envs about to predict; a history needs every frame.
        rows = list(range(b)) if self.n_obs_steps > 1 else need
        t_enc = time.perf_counter()
        if rows:
            step = self._step_inputs(obs, rows)
            if "vision" in step and (bad := _bad_rows(step["vision"])):
                raise NonFiniteActionError(
                    f"the encoder produced non-finite features (vision) for env ids {[env_ids[rows[k]] for k in bad]} "
                    f"from finite frames: its weights hold NaN/inf or its dtype overflows; check encoder.weights"
                )
            for k, j in enumerate(rows):
                self._history[env_ids[j]].append({key: v[k] for key, v in step.items()})
        t_head = time.perf_counter()
        if need:
            windows = [self._window(env_ids[j]) for j in need]
            batch = {k: torch.stack([w[k] for w in windows]) for k in windows[0]}
            chunks = self.policy.predict(batch).cpu().numpy()
            if bad := _bad_rows(chunks):
                self._head_failed([env_ids[need[k]] for k in bad])
            for k, j in enumerate(need):
                i = env_ids[j]
                if self.temporal_ensemble:
                    self._chunks[i].append(deque(chunks[k]))
                else:
                    self._queue[i].extend(chunks[k, : self.n_action_steps])
        t_end = time.perf_counter()
        actions = np.stack([self._next_action(i) for i in env_ids]).astype(np.float32)
        if bad := _bad_rows(actions):  # the guarantee itself, whatever the queues and the ensemble did
            self._head_failed([env_ids[j] for j in bad])
        self.last_timing = {"encode_ms": (t_head - t_enc) * 1e3, "head_ms": (t_end - t_head) * 1e3,
                            "total_ms": (time.perf_counter() - t0) * 1e3}
        return np.clip(actions, ACTION_LOW, ACTION_HIGH)

    def _check_obs(self, obs: dict, env_ids: list[int]) -> None:
        # Checked as float32, the dtype the head reads: 1e39 is finite in float64 only.
        found = {}
        for key in self.obs_keys:
            value = np.asarray(obs[key])
            if value.dtype.kind != "f":
                continue
            with np.errstate(over="ignore"):  # the overflow is what is looked for
                value = value.astype(np.float32, copy=False)
            if bad := _bad_rows(value):
                found[key] = [env_ids[j] for j in bad]
        if found:
            where = "; ".join(f"{key} for env ids {ids}" for key, ids in found.items())
            raise NonFiniteActionError(
                f"non-finite observations (NaN or inf as float32): {where}. No action was produced and no "
                f"controller state changed; check those sensors (or the simulator) and reset the episodes"
            )

    def _head_failed(self, ids: list[int]) -> None:
        raise NonFiniteActionError(
            f"the policy head produced non-finite actions for env ids {ids} from finite inputs: the checkpoint's "
            f"weights are probably diverged (NaN/inf); check its training loss, retrain or use another checkpoint"
        )

    def _next_action(self, i: int) -> np.ndarray:
        if not self.temporal_ensemble:
            return self._queue[i].popleft()
        # ACT-style: every live chunk proposes its action for now; older chunks weigh more.
        proposals = [c.popleft() for c in self._chunks[i]]
        self._chunks[i] = deque((c for c in self._chunks[i] if c), maxlen=self.horizon)
        w = np.exp(-self.ensemble_decay * np.arange(len(proposals)))
        return (np.stack(proposals) * w[:, None]).sum(0) / w.sum()
