"""Frozen S² features of every demo frame, computed once and cached in Zarr under the store.

The cache lives at ``<store>/features/<encoder>-<key>.zarr`` (deleted with its store) and is
keyed by everything that changes the features: encoder, weights identity, scales, feature
form, pooling grid, native size, camera key, frame resolution and the store's contents.

A cache is built in a private folder beside its place and renamed there once its last frame is
written, under an exclusive lock (``<cache>.lock``): runs sharing a cache wait for the one building
it and then reuse it, and no run ever sees another's half-written cache. A cache that is damaged
(a chunk file missing or corrupt, see integrity.py) or was left incomplete by older code is
rebuilt with a warning, never trusted.

A store only grows (collection resumes, DAgger adds episodes), so a new cache starts from the
longest finished cache of the same features computed on a prefix of the store's episodes (same
seeds in the same order, ending on an episode boundary) and encodes only the frames after it.

``dtype="bf16"`` computes the features with a bf16 copy of the encoder (`s2robot.encoders.fast`),
at ``batch_size`` frames per forward pass; such a cache has its own key (``compute_dtype``), so
float32 and bf16 features never mix.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np
import torch
import zarr
import zarr.codecs

from s2robot.data.integrity import checksummed, describe, read_checked, writer
from s2robot.data.replay_buffer import ReplayBuffer, StoreError
from s2robot.encoders.frozen import FrozenS2Encoder

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def _dtype(encoder: FrozenS2Encoder) -> str:
    return "bf16" if encoder.backbone.pos_embed.dtype == torch.bfloat16 else "fp32"


def cache_key(encoder: FrozenS2Encoder, store: ReplayBuffer, camera: str) -> dict:
    return {
        "version": CACHE_VERSION,
        **encoder.describe(),
        # float32, the default, is not written: caches built before this option keep their key.
        **({"compute_dtype": _dtype(encoder)} if _dtype(encoder) != "fp32" else {}),
        "camera": camera,
        "resolution": list(store.shape(camera)),
        # The store's contents: a store recollected or extended gets new features.
        "store_steps": store.n_steps,
        "store_seeds": hashlib.sha1(store.episode_seeds.tobytes()).hexdigest(),
    }


def _prefix_episodes(store: ReplayBuffer, other: dict) -> int:
    """How many of the store's first episodes ``other`` (a cache key) was computed on, or 0 when it
    was not computed on a prefix of this store (its episodes' seeds, in order, and their steps)."""
    steps = other.get("store_steps")
    ends = store.episode_ends
    if not isinstance(steps, int) or steps <= 0 or steps >= store.n_steps:
        return 0
    k = int(np.searchsorted(ends, steps)) + 1
    if k > len(ends) or ends[k - 1] != steps:
        return 0
    prefix = hashlib.sha1(store.episode_seeds[:k].tobytes()).hexdigest()
    return k if prefix == other.get("store_seeds") else 0


def _copy_prefix(store: ReplayBuffer, path: str, key: dict, out) -> int:
    """Rows copied into ``out`` from the longest sound cache of the same features on a prefix of this
    store's episodes (the store is append-only: DAgger adds episodes, collection resumes), so only the
    new frames are encoded. -> the number of rows copied (0: none)."""
    same = {k: v for k, v in key.items() if k not in ("store_steps", "store_seeds")}
    best, best_steps = None, 0
    for other_path in glob.glob(os.path.join(os.path.dirname(path), f"{glob.escape(key['encoder'])}-*.zarr")):
        try:
            other = dict(zarr.open_group(other_path, mode="r").attrs.get("key") or {})
        except Exception:  # unreadable: not a candidate
            continue
        rest = {k: v for k, v in other.items() if k not in ("store_steps", "store_seeds")}
        if rest == same and _prefix_episodes(store, other) and other["store_steps"] > best_steps:
            best, best_steps = (other_path, other), other["store_steps"]
    if best is None or (rows := _load_complete(best[0], best[1])) is None:
        return 0
    log.info(
        "reusing %d cached frames of %s; encoding the %d new ones", best_steps, best[0], store.n_steps - best_steps
    )
    for start in range(0, best_steps, 4096):
        out[start : min(start + 4096, best_steps)] = rows[start : min(start + 4096, best_steps)]
    return best_steps


def cache_path(store: ReplayBuffer, key: dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(store.path, "features", f"{key['encoder']}-{digest}.zarr")


def _load_complete(path: str, key: dict, warn: bool = True) -> np.ndarray | None:
    """The cached features, or None (with a warning saying why) if there is no sound cache."""
    if not os.path.exists(path):
        return None
    say = log.warning if warn else log.debug  # the unlocked first look stays quiet: the locked one tells
    try:
        group = zarr.open_group(path, mode="r")
        complete = group.attrs.get("complete") and group.attrs.get("key") == key
        arr = group["features"] if complete else None
    except Exception as e:  # a cache killed mid-write by older code can be unreadable in many ways
        say("feature cache %s is unreadable (%s); rebuilding it", path, e)
        return None
    if arr is None:
        say("feature cache %s was interrupted before it finished; rebuilding it", path)
        return None
    features, damage = read_checked(arr, 0, arr.shape[0])
    if damage is not None:
        say("feature cache %s is damaged, %s; rebuilding it", path, describe("features", damage))
    return features


@contextlib.contextmanager
def _exclusive(lock_path: str) -> Iterator[None]:
    with open(lock_path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another run to finish the feature cache (%s)", lock_path)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def in_dtype(encoder: FrozenS2Encoder, dtype: str | None, batch_size: int = 64) -> FrozenS2Encoder:
    """``encoder`` itself, or a copy running in ``dtype`` (``fp32`` | ``bf16``; a CPU that cannot run
    bf16 falls back to fp32 with a warning). The caller's encoder is never changed."""
    if dtype is None or dtype == _dtype(encoder):
        return encoder
    from s2robot.encoders.fast import accelerate, resolve_inference

    device = encoder.backbone.pos_embed.device
    inference = resolve_inference(device, dtype, compile=False)
    twin = FrozenS2Encoder(
        encoder.spec,
        copy.deepcopy(encoder.backbone),
        scales=encoder.scales,
        feature=encoder.feature,
        output_grid=encoder.output_grid,
        weights_id=encoder.weights_id,
        max_batch=encoder.max_batch,
    )
    return accelerate(twin, inference, max_batch=batch_size)


def cached_features(
    store: ReplayBuffer,
    encoder: FrozenS2Encoder,
    camera: str,
    batch_size: int = 64,
    progress: bool = True,
    dtype: str | None = None,
) -> tuple[np.ndarray, str]:
    """Features of every frame of ``store[camera]`` (``n_steps x *encoder.feature_shape``) and the
    cache path; computed and written only when no sound cache with the same key exists.
    ``dtype``: compute in ``fp32`` or ``bf16`` (None: the encoder's own)."""
    encoder = in_dtype(encoder, dtype, batch_size)
    key = cache_key(encoder, store, camera)
    path = cache_path(store, key)
    # A finished cache is never changed in place (only replaced when damaged): read it unlocked.
    if (features := _load_complete(path, key, warn=False)) is not None:
        log.info("reusing cached features %s", path)
        return features, path
    try:
        return _build(store, encoder, camera, batch_size, progress, path, key), path
    except OSError as e:  # a full disk, a read-only store folder
        raise StoreError(
            f"{path}: cannot write the feature cache ({type(e).__name__}: {e}); free disk space or make "
            f"{os.path.dirname(path)} writable, or delete that folder and run again"
        ) from e


def _build(
    store: ReplayBuffer, encoder: FrozenS2Encoder, camera: str, batch_size: int, progress: bool, path: str, key: dict
) -> np.ndarray:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _exclusive(path + ".lock"):
        if (features := _load_complete(path, key)) is not None:  # built by the run we waited for
            log.info("reusing cached features %s", path)
            return features
        for stale in glob.glob(glob.escape(path) + ".building-*"):  # left by a killed run: ours holds the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix=os.path.basename(path) + ".building-", dir=os.path.dirname(path))
        try:
            features = _compute(store, encoder, camera, batch_size, progress, tmp, key)
            shutil.rmtree(path, ignore_errors=True)  # a damaged or interrupted cache
            os.rename(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return features


def _compute(
    store: ReplayBuffer, encoder: FrozenS2Encoder, camera: str, batch_size: int, progress: bool, path: str, key: dict
) -> np.ndarray:
    n = store.n_steps
    # Token maps are large; half precision halves the cache with no effect on a BC head.
    dtype = np.float16 if encoder.feature == "tokens" else np.float32
    group = zarr.open_group(path, mode="w")
    group.attrs.update({"key": key, "complete": False})
    out = writer(
        group.create_array(
            "features",
            shape=(n, *encoder.feature_shape),
            dtype=dtype,
            chunks=(max(1, min(batch_size, n)), *encoder.feature_shape),
            compressors=checksummed(zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")),
        )
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"features {encoder.spec.name} {list(encoder.scales)}", unit="frame")
    log.info("computing %s features of %d frames into %s", encoder.spec.name, n, path)
    done = _copy_prefix(store, path, key, out)
    if bar is not None:
        bar.update(done)
    for start in range(done, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = encoder(store.read(camera, start, stop)).cpu().numpy().astype(dtype)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    group.attrs["complete"] = True  # still the mark older code and readers look for
    return out[:]
