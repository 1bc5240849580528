"""A trained checkpoint as a controller: a frozen S² encoder per camera + head + action-chunk
execution, for a batch of environments at once (evaluation workers, the action server).

Somewhat over 250 lines: the checks that every needed camera is there and every action finite
sit beside the acting they guard, so that no path through act() skips them."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from s2robot.checkpoint import (
    CheckpointError,
    camera_entries,
    checkpoint_hash,
    load_checkpoint,
    policy_from_checkpoint,
    robot_description,
)
from s2robot.encoders.config import EncoderConfig
from s2robot.encoders.fast import accelerate, resolve_inference
from s2robot.errors import UserError
from s2robot.observations import PRIVILEGED_KEYS


class NonFiniteActionError(UserError, ValueError):
    """The controller would have emitted a NaN or infinite action: from non-finite observations,
    encoder features or head output. Clipping keeps NaN, and MuJoCo (or a real arm's driver) given
    one stops driving the motors, so no action is returned at all."""


class MissingObservationError(UserError, KeyError):
    """An observation without a key the policy reads (a camera it was trained on, proprio)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _bad_rows(x) -> list[int]:
    """Batch rows holding any NaN or inf."""
    if isinstance(x, torch.Tensor):
        return torch.nonzero(~torch.isfinite(x).reshape(len(x), -1).all(1)).flatten().tolist()
    return np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(1)).tolist()


class PolicyController:
    """``act(obs)`` takes a batch of observations (``key -> B x ...`` numpy: a uint8 frame of every
    camera in ``cameras``, ``proprio``, and ``cube_pos``/``cube_yaw`` for the privileged baseline) and
    returns ``B x action_dim``.

    Each camera has its frozen encoder (``encoders[camera]``); cameras the checkpoint describes with
    the same encoder options share one module, and their frames go through it in one batch.
    ``encoder_weights``: a weights file for every camera, or ``camera -> file``, replacing the
    stored paths (a file that moved); the weights must be the ones the policy trained on.
    ``dtype`` (``fp32`` | ``bf16`` | ``auto``) and ``compile`` (None: on CUDA) choose the encoders'
    fast path (`s2robot.encoders.fast`); the defaults keep evaluation's float32 eager numerics.

    Each env keeps its own observation history (transformer head) and action queue: a chunk of
    ``horizon`` actions is predicted and its first ``n_action_steps`` executed (receding horizon),
    or, with ``temporal_ensemble``, every step's action averages all chunks that cover it.

    Every action is finite: a batch with non-finite inputs raises `NonFiniteActionError` naming the
    env ids and keys before any state changes; non-finite features or head output raise it naming
    the env ids (then ``reset_env`` them: their observation history already holds this step).
    """

    def __init__(
        self,
        ckpt: dict,
        device: str | torch.device = "cpu",
        encoder_weights: str | Mapping[str, str] | None = None,
        ensemble_decay: float = 0.01,
        dtype: str = "fp32",
        compile: bool | None = False,
    ):
        self.ckpt = ckpt
        self.device = torch.device(device)
        # The encoders' fast path (s2robot.encoders.fast); the head stays float32 eager: it is under
        # 1% of the time, and its normaliser and actions want the precision.
        self.inference = resolve_inference(self.device, dtype, compile)
        self.policy = policy_from_checkpoint(ckpt).to(self.device)
        self.inputs = list(ckpt["inputs"])
        self.horizon = self.policy.horizon
        self.n_obs_steps = self.policy.n_obs_steps
        self.n_action_steps = int(ckpt["execution"]["n_action_steps"])
        self.temporal_ensemble = bool(ckpt["execution"]["temporal_ensemble"])
        self.ensemble_decay = ensemble_decay
        self.camera_info = camera_entries(ckpt)
        self.cameras = list(self.camera_info)
        self.encoders = self._build_encoders(encoder_weights)
        # The first camera: the only one of a single-camera policy, as before several cameras.
        self.camera = self.cameras[0] if self.cameras else None
        self.last_timing: dict[str, float] = {}
        self.reset(1)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", **kw) -> PolicyController:
        runner = cls(load_checkpoint(path), device, **kw)
        runner.checkpoint_hash = checkpoint_hash(path)
        return runner

    checkpoint_hash: str = "unknown"

    def _build_encoders(self, weights: str | Mapping[str, str] | None) -> dict:
        if isinstance(weights, Mapping) and (unknown := sorted(set(weights) - set(self.cameras))):
            raise CheckpointError(f"encoder_weights names cameras {unknown} this policy does not see ({self.cameras})")
        built: dict = {}
        out = {}
        for cam, info in self.camera_info.items():
            given = weights.get(cam) if isinstance(weights, Mapping) else weights
            key = (EncoderConfig.from_checkpoint(info), given)
            if key not in built:
                built[key] = accelerate(key[0].build(self.device, weights=given), self.inference)
            enc = out[cam] = built[key]
            if enc.weights_id != info["weights"]:
                which = f"camera {cam}'s encoder" if len(self.camera_info) > 1 else "encoder"
                raise CheckpointError(
                    f"{which} weights {given or info['weights_arg']} ({enc.weights_id}) are not the ones this policy "
                    f"was trained on ({info['weights']}); pass the same file with encoder_weights=/path"
                )
        return out

    @property
    def encoder(self):
        """The first camera's encoder (None without vision); ``encoders`` has every camera's."""
        return self.encoders[self.camera] if self.camera else None

    @property
    def camera_keys(self) -> list[str]:
        return list(self.cameras)

    @property
    def obs_keys(self) -> list[str]:
        return self.camera_keys + [k for k in ("proprio", *PRIVILEGED_KEYS) if k in self.inputs]

    @cached_property
    def robot(self):
        """The robot the policy was trained for (`RobotDescription`): action bounds, cameras, rate."""
        robot = robot_description(self.ckpt)
        if missing := [c for c in self.cameras if c not in robot.cameras]:
            raise CheckpointError(f"the checkpoint's robot {robot.name!r} has no camera {missing}; it is damaged")
        return robot

    @property
    def metadata(self) -> dict:
        enc = self.ckpt["encoder"]
        robot = self.robot
        # Each camera as the robot sends it: the native size it was recorded (or rendered) at.
        shapes = {cam: [*robot.cameras[cam], 3] for cam in self.cameras}
        hz = robot.control_hz
        return {
            "obs_keys": self.obs_keys,
            "camera_keys": self.camera_keys,
            "image_shape": shapes[self.camera] if self.cameras else None,  # what single-camera clients read
            "image_shapes": shapes,
            "proprio_dim": int(self.policy.input_shapes["proprio"][0]) if "proprio" in self.inputs else 0,
            # every non-image input and its length (proprio, and the baselines' privileged state)
            "vector_dims": {k: int(self.policy.input_shapes[k][0]) for k in self.inputs if k != "vision"},
            "action_dim": self.policy.action_dim,
            "action_low": list(robot.to_dict()["action_low"]),
            "action_high": list(robot.to_dict()["action_high"]),
            "control_freq": int(hz) if float(hz).is_integer() else hz,
            "robot": robot.to_dict(),
            "action_horizon": self.horizon,
            "n_action_steps": self.n_action_steps,
            "temporal_ensemble": self.temporal_ensemble,
            "encoder": enc["encoder"] if enc else None,  # the first camera's, as "scales"
            "scales": enc["scales"] if enc else None,
            "camera_encoders": {
                cam: {k: e[k] for k in ("encoder", "scales", "feature", "img_size") if k in e}
                for cam, e in self.camera_info.items()
            },
            "checkpoint": self.checkpoint_hash,
        }

    def _encoder_groups(self) -> list[tuple[object, list[str]]]:
        """``(encoder, cameras it encodes)`` for each distinct encoder module, in camera order."""
        groups: dict[int, tuple[object, list[str]]] = {}
        for cam, enc in self.encoders.items():
            groups.setdefault(id(enc), (enc, []))[1].append(cam)
        return list(groups.values())

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
        for enc, cams in self._encoder_groups():
            frames = [np.asarray(obs[cam])[rows] for cam in cams]
            if len({f.shape for f in frames}) == 1:  # one batch through the shared encoder
                feats = enc(np.concatenate(frames)).to(self.device).split(len(rows))
            else:
                feats = [enc(f).to(self.device) for f in frames]
            for cam, f in zip(cams, feats):
                out[self.camera_info[cam]["input"]] = f
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
        if missing := [k for k in self.obs_keys if k not in obs]:
            raise MissingObservationError(
                f"the observation lacks {missing}: this policy needs {self.obs_keys}; send a frame of every camera "
                f"it was trained on ({self.cameras}), under the same names"
            )
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
            for info in self.camera_info.values():
                if bad := _bad_rows(step[info["input"]]):
                    raise NonFiniteActionError(
                        f"the encoder produced non-finite features ({info['input']}) for env ids "
                        f"{[env_ids[rows[k]] for k in bad]} from finite frames: its weights hold NaN/inf or its "
                        f"dtype overflows; check encoder.weights"
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
        self.last_timing = {
            "encode_ms": (t_head - t_enc) * 1e3,
            "head_ms": (t_end - t_head) * 1e3,
            "total_ms": (time.perf_counter() - t0) * 1e3,
        }
        return np.clip(actions, self.robot.low, self.robot.high)

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
