"""Frozen S² features of every demo frame, computed once and cached in Zarr under the store.

The cache lives at ``<store>/features/<encoder>-<key>.zarr`` (deleted with its store) and is
keyed by everything that changes the features: encoder, weights identity, scales, feature
form, pooling grid, native size, camera key, frame resolution and the store's contents.
It is marked complete only after its last frame is written, so a run killed halfway leaves
a cache that the next run detects and rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import numpy as np
import zarr
import zarr.codecs

from s2robot.encoders.frozen import FrozenS2Encoder
from s2robot.data.replay_buffer import ReplayBuffer

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def cache_key(encoder: FrozenS2Encoder, store: ReplayBuffer, camera: str) -> dict:
    return {
        "version": CACHE_VERSION,
        **encoder.describe(),
        "camera": camera,
        "resolution": list(store.shape(camera)),
        # The store's contents: a store recollected or extended gets new features.
        "store_steps": store.n_steps,
        "store_seeds": hashlib.sha1(store.episode_seeds.tobytes()).hexdigest(),
    }


def cache_path(store: ReplayBuffer, key: dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(store.path, "features", f"{key['encoder']}-{digest}.zarr")


def _open_complete(path: str, key: dict):
    if not os.path.exists(path):
        return None
    try:
        group = zarr.open_group(path, mode="r")
        if group.attrs.get("complete") and group.attrs.get("key") == key:
            return group["features"]
    except Exception as e:  # a cache killed mid-write can be unreadable in many ways
        log.warning("feature cache %s is unreadable (%s); rebuilding it", path, e)
        return None
    log.warning("feature cache %s was interrupted before it finished; rebuilding it", path)
    return None


def cached_features(store: ReplayBuffer, encoder: FrozenS2Encoder, camera: str, batch_size: int = 64,
                    progress: bool = True) -> tuple[np.ndarray, str]:
    """Features of every frame of ``store[camera]`` (``n_steps x *encoder.feature_shape``) and the
    cache path; computed and written only when no complete cache with the same key exists."""
    key = cache_key(encoder, store, camera)
    path = cache_path(store, key)
    arr = _open_complete(path, key)
    if arr is not None:
        log.info("reusing cached features %s", path)
        return arr[:], path

    shutil.rmtree(path, ignore_errors=True)
    n = store.n_steps
    # Token maps are large; half precision halves the cache with no effect on a BC head.
    dtype = np.float16 if encoder.feature == "tokens" else np.float32
    group = zarr.open_group(path, mode="w")
    group.attrs.update({"key": key, "complete": False})
    out = group.create_array("features", shape=(n, *encoder.feature_shape), dtype=dtype,
                             chunks=(max(1, min(batch_size, n)), *encoder.feature_shape),
                             compressors=zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"features {encoder.spec.name} {list(encoder.scales)}", unit="frame")
    log.info("computing %s features of %d frames into %s", encoder.spec.name, n, path)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = encoder(store.read(camera, start, stop)).cpu().numpy().astype(dtype)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    group.attrs["complete"] = True  # the commit point
    return out[:], path
