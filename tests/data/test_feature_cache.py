import zarr

from s2robot.encoders import build_encoder
from s2robot.data.feature_cache import cache_key, cache_path, cached_features
from s2robot.data.replay_buffer import ReplayBuffer


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


def test_cache_is_reused_and_keyed(tiny_store):
    store = ReplayBuffer.open(tiny_store)
    first = _enc(feature="mean")
    feats, path = cached_features(store, first, "agentview", batch_size=32, progress=False)
    assert first.frames == store.n_steps and feats.shape == (store.n_steps, 384)
    again = _enc(feature="mean")
    feats2, path2 = cached_features(store, again, "agentview", progress=False)
    assert again.frames == 0 and path2 == path and (feats2 == feats).all()
    # Anything that changes the features changes the key.
    for other in (_enc(feature="cls"), _enc(scales=[1]), _enc(seed=1, feature="mean")):
        assert cache_path(store, cache_key(other, store, "agentview")) != path


def test_interrupted_cache_is_rebuilt(tiny_store):
    store = ReplayBuffer.open(tiny_store)
    enc = _enc(feature="cls", output_grid="largest")
    feats, path = cached_features(store, enc, "agentview", progress=False)
    zarr.open_group(path, mode="r+").attrs["complete"] = False  # as if killed before the end
    rerun = _enc(feature="cls", output_grid="largest")
    feats2, _ = cached_features(store, rerun, "agentview", progress=False)
    assert rerun.frames == store.n_steps and (feats2 == feats).all()


def test_token_features_are_half_precision(tiny_store):
    store = ReplayBuffer.open(tiny_store)
    feats, _ = cached_features(store, _enc(feature="tokens", scales=[1]), "agentview", progress=False)
    assert feats.dtype == "float16" and feats.shape == (store.n_steps, 1 + 4, 192)
