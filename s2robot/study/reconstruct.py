"""The paper's reconstruction analysis (S² paper, section 4.2) on robot frames: how much of a
larger encoder's features does a linear map from a smaller encoder's (S²) features recover?

On frames of held-out EPISODES (neighbouring frames of one episode are near copies, so a split by
frame would let the fit see its test frames), with MSE over frames and feature dimensions:

- ``l``: loss of a least-squares map small -> large, fit on the fit episodes' frames;
- ``l0``: loss of the constant predictor, the fit split's mean of the large features;
- ``I = -log(l / l0)`` (natural log): 0 is no better than the constant, larger recovers more;
- ``I*``: the same ``I`` with the large encoder's own features as input, through the same
  pipeline (standardise, ridge fit on the fit split, held-out loss): the paper's reference;
- ``ratio = I / I*``.

A linear map reproduces its own input, so ``l*`` is not a property of the large model but of the
ridge (and float64 rounding): ``I*`` is the same constant for every small encoder against one
target, so it sets the level of ``ratio``, never the order of the rows. ``l*/l0`` is reported.
With no more fit frames than inputs + 1 the map interpolates the fit split: that is refused
(``DegenerateFitError``) unless asked for, then flagged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from s2robot.errors import UserError

DEFAULT_RIDGE = 1e-6  # x trace(X^T X) / d on standardised inputs: a tiny, scale-free ridge
# "tokens": the patch tokens, one map shared by every grid position (each frame's positions are rows),
# what a head that reads the token grid sees; CLS and mean are the pooled vectors an MLP head reads
FEATURES = ("cls", "mean", "tokens")
LOW_SAMPLES_PER_FEATURE = 5.0  # below this the held-out loss carries a visible overfitting term


class ReconstructionError(UserError, ValueError):
    """The analysis cannot run as asked (too few episodes, constant targets, unknown feature)."""


class DegenerateFitError(ReconstructionError):
    """No more fit frames than parameters: the least-squares map would interpolate the fit split."""


def sample_frames(store, camera: str, *, stride: int = 10, max_frames: int | None = None, seed: int = 0):
    """Every ``stride``-th frame of every episode of ``camera`` (uint8 N x H x W x 3) and the
    episode index of each; over ``max_frames``, a seeded uniform subset (episode ids kept)."""
    from s2robot.data.replay_buffer import ReplayBuffer

    if stride < 1:
        raise ReconstructionError(f"stride={stride}: must be >= 1")
    if not isinstance(store, ReplayBuffer):
        store = ReplayBuffer.open(store, required_keys=(camera,))
    steps, episode_of = [], []
    for i in range(store.n_episodes):
        sl = store.episode_slice(i)
        steps.append(np.arange(sl.start, sl.stop, stride))
        episode_of.append(np.full(len(steps[-1]), i, np.int64))
    if not steps:
        raise ReconstructionError(f"{store.path}: the store holds no episodes")
    steps, episode_of = np.concatenate(steps), np.concatenate(episode_of)
    if max_frames is not None and len(steps) > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(len(steps), max_frames, replace=False))
        steps, episode_of = steps[keep], episode_of[keep]
    # One read per episode, then the picks: a read costs ~3x a frame's decoding (measured), so reading
    # frame by frame only pays at strides over ~3; memory holds one episode's frames at a time.
    frames = []
    for i in np.unique(episode_of):
        sl = store.episode_slice(int(i))
        frames.append(store.read(camera, sl.start, sl.stop)[steps[episode_of == i] - sl.start])
    return np.concatenate(frames), episode_of


def episode_split(episode_of: np.ndarray, heldout_fraction: float = 0.2, seed: int = 0):
    """Frame indices ``(fit, heldout)``: a seeded ``heldout_fraction`` of the EPISODES (at least
    one, never all) is held out with every one of its frames."""
    if not 0 < heldout_fraction < 1:
        raise ReconstructionError(f"heldout_fraction={heldout_fraction}: must lie strictly between 0 and 1")
    episodes = np.unique(episode_of)
    if len(episodes) < 2:
        raise ReconstructionError(f"{len(episodes)} episode(s): an episode split needs at least 2")
    n_held = min(max(1, round(heldout_fraction * len(episodes))), len(episodes) - 1)
    held_eps = np.random.default_rng(seed).choice(episodes, n_held, replace=False)
    held = np.isin(episode_of, held_eps)
    return np.flatnonzero(~held), np.flatnonzero(held)


def encode(encoder, frames: np.ndarray, *, batch_size: int = 64, desc: str = "encode", progress: bool = True):
    """Features of uint8 frames, float64, with a tqdm bar while encoding: N x D for pooled ones,
    N x P x D (the P patch tokens, CLS dropped) for ``tokens``."""
    from tqdm import tqdm

    feature = getattr(encoder, "feature", "cls")
    if feature not in FEATURES:
        raise ReconstructionError(f"feature={feature!r}: the analysis reads one of {FEATURES}")
    out = []
    for i in tqdm(range(0, len(frames), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        out.append(encoder(frames[i : i + batch_size]).float().cpu().numpy())
    out = np.concatenate(out)
    if feature == "tokens":
        return out[:, 1:].astype(np.float64)  # why [1:]: the CLS token has no grid position
    return out.reshape(len(frames), -1).astype(np.float64)


def _rows(features: np.ndarray, frames_idx: np.ndarray) -> np.ndarray:
    """The regression rows of the given frames: one per frame, or one per (frame, grid position)."""
    picked = features[frames_idx]
    return picked.reshape(-1, features.shape[-1])


def reconstruction(x_fit, y_fit, x_held, y_held, *, ridge: float = DEFAULT_RIDGE, allow_degenerate: bool = False):
    """Ridge least squares ``x -> y`` on the fit rows, scored on the held-out rows (see the module
    docstring). Inputs are standardised per feature on the fit split (a constant one stays 0);
    the ridge is ``ridge * trace(Xs^T Xs) / d``, solved in float64; the intercept is unpenalised."""
    x_fit, y_fit, x_held, y_held = (np.asarray(a, np.float64) for a in (x_fit, y_fit, x_held, y_held))
    n_fit, d_in = x_fit.shape
    if not ridge > 0:
        raise ReconstructionError(f"ridge={ridge}: must be > 0 (it keeps the solve defined for collinear features)")
    degenerate = n_fit <= d_in + 1  # d_in weights + an intercept can fit any n_fit <= d_in + 1 targets exactly
    if degenerate and not allow_degenerate:
        raise DegenerateFitError(
            f"{n_fit} fit frames for {d_in} input features: the least-squares map would interpolate the fit "
            f"split; use more frames (a smaller stride, more max frames, more episodes) or fewer scales"
        )
    mean, std = x_fit.mean(0), x_fit.std(0)
    std = np.where(std > 1e-12 * max(float(std.max()), 1e-300), std, 1.0)  # why: a constant input stays 0
    xs, xh = (x_fit - mean) / std, (x_held - mean) / std
    y_mean = y_fit.mean(0)
    gram = xs.T @ xs
    lam = ridge * float(np.trace(gram)) / d_in
    w = np.linalg.solve(gram + lam * np.eye(d_in), xs.T @ (y_fit - y_mean))
    loss = float(((xh @ w + y_mean - y_held) ** 2).mean())
    l0 = float(((y_mean - y_held) ** 2).mean())
    if not l0 > 0:
        raise ReconstructionError("the target features are constant on the held-out frames: nothing to reconstruct")
    info = -math.log(max(loss, 1e-300) / l0)  # why the floor: an exact fit must stay a finite JSON number
    return {
        "l": loss,
        "l0": l0,
        "l_over_l0": loss / l0,
        "I": info,
        "n_fit": int(n_fit),
        "n_heldout": int(len(x_held)),
        "dim_in": int(d_in),
        "dim_out": int(y_fit.shape[1]),
        "samples_per_feature": round(n_fit / d_in, 3),
        "degenerate": bool(degenerate),
        "ridge": ridge,
    }


def reconstruction_analysis(
    frames: np.ndarray,
    episode_of: np.ndarray,
    small: Sequence,
    large,
    *,
    heldout_fraction: float = 0.2,
    seed: int = 0,
    ridge: float = DEFAULT_RIDGE,
    batch_size: int = 64,
    device="cpu",
    progress: bool = True,
    allow_degenerate: bool = False,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """``small``: EncoderConfigs (one per encoder x scales), ``large``: the target's EncoderConfig
    (or already built encoders). Returns the split, the target, ``I*`` and one row per small one."""
    fit, held = episode_split(episode_of, heldout_fraction, seed)

    def built(cfg):
        return cfg.build(device) if hasattr(cfg, "build") else cfg

    def features(enc, name):
        return encode(enc, frames, batch_size=batch_size, desc=name, progress=progress)

    target = built(large)
    y = features(target, f"{target.spec.name} {target.scales} (target)")
    y_fit, y_held = _rows(y, fit), _rows(y, held)
    # I*: the target's own features through the very same fit; every row's ratio divides by it
    ref = reconstruction(y_fit, y_fit, y_held, y_held, ridge=ridge, allow_degenerate=allow_degenerate)
    if not ref["I"] > 0:
        raise ReconstructionError(f"the target reconstructs itself no better than its mean (I*={ref['I']:.3g})")
    rows = []
    for cfg in small:
        enc = built(cfg)
        if enc.feature_shape[:-1] != target.feature_shape[:-1]:  # before an encoding pass is spent on it
            raise ReconstructionError(
                f"{enc.spec.name} has {enc.feature_shape[0] - 1} grid positions, the target "
                f"{target.feature_shape[0] - 1}: a map per position needs the same token grid (the same "
                f"img_size / patch size ratio on both)"
            )
        x = features(enc, f"{enc.spec.name} {enc.scales}")
        r = reconstruction(_rows(x, fit), y_fit, _rows(x, held), y_held, ridge=ridge, allow_degenerate=allow_degenerate)
        rows.append({**enc.describe(), **r, "I_star": ref["I"], "ratio": r["I"] / ref["I"]})
        log(f"{enc.spec.name} {enc.scales}: I={r['I']:.3f}, I*={ref['I']:.3f}, ratio={rows[-1]['ratio']:.3f}")
    return {
        "target": {**target.describe(), **ref, "I_star": ref["I"]},
        "rows": rows,
        "split": {
            "by": "episode",
            "heldout_fraction": heldout_fraction,
            "seed": seed,
            "fit_episodes": int(len(np.unique(episode_of[fit]))),
            "heldout_episodes": int(len(np.unique(episode_of[held]))),
            "rows_per_frame": int(y.shape[1]) if y.ndim == 3 else 1,
            "n_fit": int(len(fit)),
            "n_heldout": int(len(held)),
        },
        "definitions": {
            "l": "held-out MSE of the ridge least-squares map small -> target (fit on the fit episodes)",
            "l0": "held-out MSE of predicting the fit split's mean target features",
            "I": "-ln(l / l0)",
            "I_star": "I of the target's own features through the same pipeline (set by the ridge)",
            "ratio": "I / I_star",
        },
    }


def plot_ratios(results: Sequence[dict], path) -> None:
    """Reconstruction ratio against the small encoder's scales, one line per (small, target) pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for res in results:
        t = res["target"]
        pairs: dict[str, list] = {}
        for r in res["rows"]:
            label = f"{r['encoder']} ({r['img_size']} px) -> {t['encoder']} ({t['img_size']} px), {t['feature']}"
            pairs.setdefault(label, []).append(r)
        for label, rows in pairs.items():
            ticks = ["-".join(map(str, r["scales"])) for r in rows]
            ax.plot(ticks, [r["ratio"] for r in rows], marker="o", label=label)
            for x, r in zip(ticks, rows):  # I itself: the ratio's level is set by I*, i.e. by the ridge
                ax.annotate(f"I={r['I']:.2f}", (x, r["ratio"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("small encoder's S² scales")
    ax.set_ylabel("reconstruction ratio I / I*")
    ax.set_title("linear reconstruction of the target's features (held-out episodes)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
