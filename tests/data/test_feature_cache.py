import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from s2robot.data.feature_cache import cache_key, cache_path, cached_features
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.encoders import build_encoder


class Counting:
    """Wraps an encoder and counts the frames it was asked to encode."""

    def __init__(self, enc):
        self.enc, self.frames = enc, 0

    def __getattr__(self, name):
        return getattr(self.enc, name)

    def __call__(self, x):
        self.frames += len(x)
        return self.enc(x)


def _enc(**kw):
    return Counting(build_encoder("vit_t", weights="random", img_size=32, **{"scales": [1, 2], **kw}))


@pytest.fixture
def frames_store(tmp_path):
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer.create(tmp_path / "frames.zarr")
    for seed, length in enumerate((20, 25, 15)):
        buffer.add_episode(
            {
                "agentview": rng.integers(0, 256, (length, 32, 32, 3), dtype=np.uint8),
                "action": rng.normal(size=(length, 7)).astype(np.float32),
            },
            seed=seed,
        )
    return ReplayBuffer.open(tmp_path / "frames.zarr")


def test_cache_is_reused_and_keyed(frames_store):
    store = frames_store
    first = _enc(feature="mean")
    feats, path = cached_features(store, first, "agentview", batch_size=32, progress=False)
    assert first.frames == store.n_steps and feats.shape == (store.n_steps, 384)
    again = _enc(feature="mean")
    feats2, path2 = cached_features(store, again, "agentview", progress=False)
    assert again.frames == 0 and path2 == path and (feats2 == feats).all()
    # Anything that changes the features changes the key.
    for other in (_enc(feature="cls"), _enc(scales=[1]), _enc(seed=1, feature="mean")):
        assert cache_path(store, cache_key(other, store, "agentview")) != path


def test_grown_store_encodes_only_its_new_frames(frames_store):
    store = frames_store
    before = store.n_steps
    feats, path = cached_features(store, _enc(feature="mean"), "agentview", batch_size=32, progress=False)
    grown = ReplayBuffer.open(store.path, mode="a")
    rng = np.random.default_rng(1)
    grown.add_episode(
        {
            "agentview": rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
            "action": rng.normal(size=(12, 7)).astype(np.float32),
        },
        seed=7,
    )
    grown = ReplayBuffer.open(store.path)
    enc = _enc(feature="mean")
    feats2, path2 = cached_features(grown, enc, "agentview", batch_size=32, progress=False)
    assert path2 != path and enc.frames == 12  # only the new episode went through the encoder
    fresh = _enc(feature="mean")
    expect = fresh.enc(grown.read("agentview")).numpy()
    np.testing.assert_allclose(feats2, expect, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(feats2[:before], feats)
    # Another encoder's cache, or a cache of other episodes, is never taken as the prefix.
    other = _enc(feature="cls")
    cached_features(grown, other, "agentview", progress=False)
    assert other.frames == grown.n_steps


def test_cache_of_other_episodes_is_not_a_prefix(tmp_path, frames_store):
    from s2robot.data.feature_cache import _prefix_episodes

    store = frames_store
    ends, seeds = store.episode_ends, store.episode_seeds
    import hashlib

    digest = lambda k: hashlib.sha1(seeds[:k].tobytes()).hexdigest()  # noqa: E731
    assert _prefix_episodes(store, {"store_steps": int(ends[1]), "store_seeds": digest(2)}) == 2
    assert _prefix_episodes(store, {"store_steps": int(ends[1]), "store_seeds": digest(1)}) == 0  # other seeds
    assert _prefix_episodes(store, {"store_steps": int(ends[1]) - 1, "store_seeds": digest(2)}) == 0  # mid-episode
    assert _prefix_episodes(store, {"store_steps": int(ends[-1]), "store_seeds": digest(3)}) == 0  # the whole store


def test_interrupted_cache_is_rebuilt(frames_store):
    store = frames_store
    enc = _enc(feature="cls", output_grid="largest")
    feats, path = cached_features(store, enc, "agentview", progress=False)
    zarr.open_group(path, mode="r+").attrs["complete"] = False  # as older code left a killed build
    Path(path + ".building-x1").mkdir()  # as this code leaves one: a private folder never renamed
    rerun = _enc(feature="cls", output_grid="largest")
    feats2, _ = cached_features(store, rerun, "agentview", progress=False)
    assert rerun.frames == store.n_steps and (feats2 == feats).all()
    assert not Path(path + ".building-x1").exists()


def test_token_features_are_half_precision(frames_store):
    store = frames_store
    feats, _ = cached_features(store, _enc(feature="tokens", scales=[1]), "agentview", progress=False)
    assert feats.dtype == "float16" and feats.shape == (store.n_steps, 1 + 4, 192)


# -- damage and concurrency --------------------------------------------------------------------------


def _small_enc():
    return Counting(build_encoder("vit_t", weights="random", img_size=32, scales=[1]))


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_damaged_cache_is_rebuilt_not_trusted(frames_store, damage, caplog):
    """A complete cache with a chunk file missing used to be reused, its rows read as zeros."""
    feats, path = cached_features(frames_store, _small_enc(), "agentview", batch_size=16, progress=False)
    chunk = Path(path) / "features" / "c" / "2" / "0"  # rows 32..47
    if damage == "missing":
        chunk.unlink()
    else:
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))
    rerun = _small_enc()
    caplog.set_level("WARNING")
    feats2, path2 = cached_features(frames_store, rerun, "agentview", batch_size=16, progress=False)
    assert path2 == path and rerun.frames == frames_store.n_steps
    np.testing.assert_array_equal(feats2, feats)
    [record] = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert "features rows 32..47" in record.getMessage() and "rebuilding" in record.getMessage()
    again = _small_enc()
    np.testing.assert_array_equal(cached_features(frames_store, again, "agentview", progress=False)[0], feats)
    assert again.frames == 0
    assert sorted(p.name for p in Path(path).parent.iterdir()) == [Path(path).name, Path(path).name + ".lock"]


def test_new_cache_is_checksummed(frames_store):
    _, path = cached_features(frames_store, _small_enc(), "agentview", progress=False)
    assert "crc32c" in json.dumps(zarr.open_group(path, mode="r")["features"].metadata.to_dict())


class Slow(Counting):
    """Encodes slowly, so that two runs surely overlap while the cache is built."""

    def __call__(self, x):
        time.sleep(0.1)
        return super().__call__(x)


def _cache_in_child(store_path, barrier, results):
    store = ReplayBuffer.open(store_path)
    enc = Slow(build_encoder("vit_t", weights="random", img_size=32, scales=[1]))
    barrier.wait()  # both runs ask for the cache at the same moment
    feats, _ = cached_features(store, enc, "agentview", batch_size=8, progress=False)
    results.put((enc.frames, feats))


@pytest.mark.slow
def test_concurrent_runs_build_the_cache_once(frames_store):
    """A second run used to take the first run's cache in progress for an interrupted one and delete
    it; the first then trained on corrupted features."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_cache_in_child, args=(frames_store.path, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    expected = build_encoder("vit_t", weights="random", img_size=32, scales=[1])(frames_store["agentview"]).numpy()
    assert sorted(frames for frames, _ in got) == [0, frames_store.n_steps]  # built once, reused once
    for _, feats in got:
        np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-4)
