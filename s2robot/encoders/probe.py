"""Linear probe: how well do frozen features locate the cube? Ridge regression from the
features of each demo episode's first frame to the cube's x, y, evaluated on held-out folds.

Errors are in cm next to the "predict the training-fold mean" baseline, so a number means
something without a reference run: an encoder whose probe does not beat the baseline carries
no usable cube position. Ridge strength is picked per outer fold by inner cross-validation on
that fold's training part only, so no held-out episode ever influences its own prediction.
"""

from __future__ import annotations

import numpy as np

# Ridge strengths as multiples of n_train * n_features on features scaled to unit RMS spread:
# the scale of X^T X's eigenvalues (their sum is n_train * n_features).
DEFAULT_ALPHAS = tuple(np.logspace(-6, 2, 17))
M_TO_CM = 100.0


def kfold_indices(n: int, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Held-out index sets of a shuffled K-fold split: disjoint, covering ``range(n)``."""
    if n_folds < 2 or n < n_folds:
        raise ValueError(f"K-fold needs 2 <= n_folds <= n samples, got n_folds={n_folds}, n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(perm, n_folds)]


class _RidgePath:
    """Ridge on one training set for many strengths at the cost of one SVD.

    Features are centred and divided by ONE scalar, their RMS spread on the training set, so
    that the strengths mean the same for any encoder. Not per feature: standardising each
    feature would blow up near-constant ones, and a held-out frame that moves such a feature
    even slightly would get a wild prediction. The intercept (the training mean of the
    targets) is not penalised."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        self.x_mean = x.mean(0)
        rms = float(np.sqrt(((x - self.x_mean) ** 2).mean()))
        self.x_scale = rms if rms > 1e-12 else 1.0
        self.y_mean = y.mean(0)
        xs = (x - self.x_mean) / self.x_scale
        self.u, self.s, self.vt = np.linalg.svd(xs, full_matrices=False)
        self.uty = self.u.T @ (y - self.y_mean)
        self.n, self.d = x.shape

    def coef(self, alpha: float) -> np.ndarray:
        lam = alpha * self.n * self.d
        return self.vt.T @ ((self.s / (self.s**2 + lam))[:, None] * self.uty)

    def predict(self, x: np.ndarray, alpha: float) -> np.ndarray:
        xs = (np.asarray(x, np.float64) - self.x_mean) / self.x_scale
        return xs @ self.coef(alpha) + self.y_mean


def select_alpha(x: np.ndarray, y: np.ndarray, alphas=DEFAULT_ALPHAS, n_folds: int = 5, seed: int = 0) -> float:
    """Inner cross-validation with the one-standard-error rule: the strongest ridge whose
    error is within one standard error (over the inner folds) of the best one. Plain argmin
    picks near-zero strengths on small sets, which one odd held-out frame then punishes."""
    n_folds = min(n_folds, len(x))
    mse = np.zeros((n_folds, len(alphas)))
    for f, test in enumerate(kfold_indices(len(x), n_folds, seed)):
        train = np.setdiff1d(np.arange(len(x)), test)
        path = _RidgePath(x[train], y[train])
        for i, a in enumerate(alphas):
            mse[f, i] = ((path.predict(x[test], a) - y[test]) ** 2).sum(1).mean()
    mean = mse.mean(0)
    best = int(np.argmin(mean))
    within = mean <= mean[best] + mse[:, best].std(ddof=1) / np.sqrt(n_folds)
    return float(np.asarray(alphas)[within].max())


def _errors(pred: np.ndarray, y: np.ndarray, scale: float) -> dict:
    err = (pred - y) * scale
    dist = np.linalg.norm(err, axis=1)
    return {
        "rmse_cm": np.sqrt((err**2).mean(0)).round(3).tolist(),
        "mae_cm": np.abs(err).mean(0).round(3).tolist(),
        "rms_dist_cm": round(float(np.sqrt((dist**2).mean())), 3),
        "mean_dist_cm": round(float(dist.mean()), 3),
        "median_dist_cm": round(float(np.median(dist)), 3),
    }


def probe_features(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    alphas=DEFAULT_ALPHAS,
    inner_folds: int = 5,
    scale: float = M_TO_CM,
    target_names=("x", "y"),
) -> dict:
    """K-fold held-out ridge probe ``features (n x d) -> targets (n x t)``.

    Every sample is predicted once, by a model fit (and tuned) on the other folds; the
    baseline predicts the training folds' mean. ``scale`` converts target units to the
    reported ones (metres -> cm). ``r2`` is per target, over the out-of-fold predictions.
    """
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    y = np.asarray(targets, np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if len(x) != len(y):
        raise ValueError(f"{len(x)} feature rows but {len(y)} targets")
    pred, base = np.empty_like(y), np.empty_like(y)
    fold_of = np.empty(len(x), np.int64)
    chosen = []
    folds = kfold_indices(len(x), n_folds, seed)
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(x)), test)
        alpha = select_alpha(x[train], y[train], alphas, inner_folds, seed + 1 + k)
        # The cube lies in the workspace: a prediction outside the training targets' range is
        # clipped to it (training information only), so one odd frame cannot dominate the RMS.
        pred[test] = np.clip(_RidgePath(x[train], y[train]).predict(x[test], alpha), y[train].min(0), y[train].max(0))
        base[test] = y[train].mean(0)
        fold_of[test] = k
        chosen.append(alpha)
    sst = ((y - y.mean(0)) ** 2).sum(0)
    r2 = 1 - ((pred - y) ** 2).sum(0) / np.where(sst > 0, sst, np.nan)
    return {
        "n": int(len(x)),
        "dim": int(x.shape[1]),
        "n_folds": len(folds),
        "targets": list(target_names),
        "probe": _errors(pred, y, scale),
        "mean_baseline": _errors(base, y, scale),
        "r2": np.round(r2, 4).tolist(),
        "alphas": chosen,
        "predictions": pred,
        "fold_of": fold_of,  # arrays, for callers; probe_encoder drops them
    }


def first_frames(store, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """Each episode's first frame and the cube's x, y (m) in it."""
    starts = np.concatenate([[0], store.episode_ends[:-1]]).astype(np.int64)
    frames = np.stack([store.read(camera, int(s), int(s) + 1)[0] for s in starts])
    cube_xy = store.read("cube_pos")[starts, :2].astype(np.float64)
    return frames, cube_xy


def encode_frames(encoder, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
    out = [encoder(frames[i : i + batch_size]).float().cpu().numpy() for i in range(0, len(frames), batch_size)]
    return np.concatenate(out).reshape(len(frames), -1)


def probe_encoder(
    encoder, store, camera: str = "agentview", n_folds: int = 5, *, batch_size: int = 64, seed: int = 0
) -> dict:
    """Linear probe of a frozen encoder (any ``build_encoder`` configuration) on a demo store
    (path or ReplayBuffer): first frame of every episode -> cube x, y. JSON-ready dict."""
    from s2robot.data.replay_buffer import ReplayBuffer, StoreError

    if not isinstance(store, ReplayBuffer):
        store = ReplayBuffer.open(store, required_keys=(camera, "cube_pos"))
    if store.n_episodes < 2 * n_folds:
        raise StoreError(
            f"{store.path}: {store.n_episodes} episodes; a {n_folds}-fold probe needs at least "
            f"{2 * n_folds} (collect more or lower n_folds)"
        )
    frames, cube_xy = first_frames(store, camera)
    feats = encode_frames(encoder, frames, batch_size)
    result = probe_features(feats, cube_xy, n_folds=n_folds, seed=seed)
    result.pop("predictions")
    result.pop("fold_of")
    describe = encoder.describe() if hasattr(encoder, "describe") else {}
    return {
        **describe,
        "store": str(store.path),
        "camera": camera,
        "frame_size": int(frames.shape[1]),
        "cube_xy_std_cm": (cube_xy.std(0) * M_TO_CM).round(3).tolist(),
        **result,
    }
