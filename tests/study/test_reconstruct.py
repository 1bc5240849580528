"""The reconstruction analysis (paper section 4.2): its definitions on features with known answers,
the episode split, the degenerate case, and the command on a synthetic store with tiny encoders."""

import json

import numpy as np
import pytest

from s2robot.study.reconstruct import (
    DegenerateFitError,
    ReconstructionError,
    episode_split,
    reconstruction,
    reconstruction_analysis,
)

TINY = dict(weights="random", img_size=32)


def _split_features(x, y, n_fit):
    return x[:n_fit], y[:n_fit], x[n_fit:], y[n_fit:]


def test_exact_linear_target_is_reconstructed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 20)) * rng.uniform(0.1, 10, size=20)  # unequal scales: standardising must cope
    y = x @ rng.normal(size=(20, 8)) + 3.0
    r = reconstruction(*_split_features(x, y, 400))
    assert r["l_over_l0"] < 1e-8 and r["I"] > 15
    assert (r["n_fit"], r["n_heldout"], r["dim_in"], r["dim_out"]) == (400, 200, 20, 8)
    # l0: the constant predictor is the FIT split's mean (the held-out mean would peek at the answers)
    assert r["l0"] == pytest.approx(((y[:400].mean(0) - y[400:]) ** 2).mean(), rel=1e-12)
    assert r["I"] == pytest.approx(-np.log(r["l"] / r["l0"]))


def test_unrelated_target_carries_no_information_on_heldout_frames():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3000, 20)), rng.normal(size=(3000, 8))
    r = reconstruction(*_split_features(x, y, 2000))
    assert abs(r["I"]) < 0.05  # overfitting costs about -log(1 + d/n) ~ -0.01: never a gain
    # on the fit split itself the map does "explain" some noise: the held-out score is what counts
    assert reconstruction(x[:2000], y[:2000], x[:2000], y[:2000])["I"] > 0.005


def test_partial_target_lands_between():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 10))
    y = x[:, :4] @ rng.normal(size=(4, 4)) + rng.normal(size=(3000, 4))  # part signal, part noise
    r = reconstruction(*_split_features(x, y, 2000))
    assert 0.3 < r["I"] < 5


def test_degenerate_fit_is_refused_or_flagged():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 50)), rng.normal(size=(60, 4))
    with pytest.raises(DegenerateFitError, match="40 fit frames for 50 input features"):
        reconstruction(*_split_features(x, y, 40))
    assert reconstruction(*_split_features(x, y, 40), allow_degenerate=True)["degenerate"]
    assert reconstruction(*_split_features(x, y, 51), allow_degenerate=True)["degenerate"]  # 50 weights + 1
    assert not reconstruction(*_split_features(x, y, 52))["degenerate"]  # 52 > 50 + 1: determined


def test_episode_split_never_shares_an_episode():
    episode_of = np.repeat(np.arange(12), np.random.default_rng(4).integers(1, 9, size=12))
    for seed in range(5):
        fit, held = episode_split(episode_of, 0.25, seed)
        assert len(fit) + len(held) == len(episode_of) and not set(fit) & set(held)
        assert not set(episode_of[fit]) & set(episode_of[held])
        assert len(set(episode_of[held])) == 3
    assert len(set(episode_of[episode_split(episode_of, 0.01)[1]])) == 1  # at least one held out
    assert len(set(episode_of[episode_split(episode_of, 0.99)[0]])) == 1  # never all of them
    with pytest.raises(ReconstructionError, match="at least 2"):
        episode_split(np.zeros(10, int))


def _frames(n_eps=10, per_ep=30, size=32, seed=0):
    """Smooth random scenes with a moving bright square: varied, and correlated within an episode."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_eps):
        base = rng.uniform(40, 200, size=(4, 4, 3)).repeat(size // 4, 0).repeat(size // 4, 1)
        for _ in range(per_ep):
            f = base + rng.normal(0, 8, size=base.shape)
            i, j = rng.integers(0, size - 8, size=2)
            f[i : i + 8, j : j + 8] = 250
            frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(frames), np.repeat(np.arange(n_eps), per_ep)


def test_analysis_on_tiny_encoders_target_against_itself_is_one():
    from s2robot.encoders.config import EncoderConfig

    frames, episode_of = _frames()
    target = EncoderConfig("vit_t", seed=7, **TINY)
    small = [EncoderConfig("vit_t", seed=7, **TINY), EncoderConfig("vit_t", seed=1, **TINY)]
    res = reconstruction_analysis(frames, episode_of, small, target, progress=False)
    same, other = res["rows"]
    assert res["target"]["I_star"] > 5  # a linear map reproduces its own input up to the ridge
    assert same["ratio"] == pytest.approx(1.0, abs=1e-9)  # the same encoder, the same pipeline
    assert other["ratio"] < 0.9  # another (random) encoder recovers less of it
    assert res["split"]["n_fit"] == same["n_fit"] == 240 and res["split"]["heldout_episodes"] == 2


def test_tokens_map_every_grid_position_and_need_the_same_grid():
    from s2robot.encoders.config import EncoderConfig

    frames, episode_of = _frames()
    tok = dict(TINY, feature="tokens")  # 32 px tiles of 16 px patches: a 2 x 2 grid
    target = EncoderConfig("vit_t", seed=7, **tok)
    small = [EncoderConfig("vit_t", seed=7, **tok), EncoderConfig("vit_t", seed=1, scales=(1, 2), **tok)]
    res = reconstruction_analysis(frames, episode_of, small, target, progress=False)
    same, other = res["rows"]
    assert same["ratio"] == pytest.approx(1.0, abs=1e-9) and other["ratio"] < 0.9
    # one row per (frame, position): 240 fit frames x 4 positions; S² [1,2] pools back to the same grid
    assert res["split"]["rows_per_frame"] == 4 and same["n_fit"] == other["n_fit"] == 960
    assert other["dim_in"] == 2 * 192 and res["target"]["dim_out"] == 192
    coarse = EncoderConfig("vit_t", seed=1, feature="tokens", weights="random", img_size=16)  # a 1 x 1 grid
    with pytest.raises(ReconstructionError, match="same token grid"):
        reconstruction_analysis(frames, episode_of, [coarse], target, progress=False)


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    from s2robot.data.replay_buffer import ReplayBuffer

    frames, episode_of = _frames(n_eps=10, per_ep=50)
    store = ReplayBuffer.create(tmp_path_factory.mktemp("reconstruct") / "frames.zarr")
    for e in range(10):
        store.add_episode({"agentview": frames[episode_of == e]}, seed=e)
    return store.path


def _run(capsys, *argv):
    from s2robot.commands.reconstruct_features import main

    with pytest.raises(SystemExit) as exc:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_command_writes_json_plot_and_says_random(capsys, tmp_path, synthetic_store):
    # a 16 px tile (one patch) keeps S² [1, 2] cheap; the target's 192 dims need > 193 fit frames
    common = ["--store", synthetic_store, "--small", "vit_t", "--small-weights", "random", "--small-img-size", "16"]
    args = [*common, "--large", "vit_t", "--large-weights", "random", "--large-img-size", "32", "--no-progress"]
    csv = tmp_path / "scaling.csv"  # a study's report: success per (encoder, scales, tile px)
    head = "kind,encoder,scales,img_size,weights,success_mean,ci95_lo_pooled_wilson,ci95_hi_pooled_wilson"
    csv.write_text(f"{head}\nvision,vit_t,1-2,16,random:seed0,0.6,0.5,0.7\nvision,vit_t,1-2,32,x,0.9,0.8,1\n")
    out_json = str(tmp_path / "r.json")
    code, out, err = _run(
        capsys, *args, "--scales", "1", "1,2", "--stride", "1", "--success-csv", str(csv), "--out", out_json
    )
    assert code == 0, err
    res = json.loads((tmp_path / "r.json").read_text())
    assert "success_mean" not in res["rows"][0] and res["rows"][1]["success_mean"] == 0.6
    assert [r["scales"] for r in res["rows"]] == [[1], [1, 2]] and res["target"]["dim_out"] == 192
    assert res["random_weights"] == ["small", "large"] and "NOT the paper's measurement" in out
    assert (tmp_path / "r.png").stat().st_size > 0
    # 100 fit frames for the target's 192 dims: refused in one line, not reported as a measurement
    code, out, err = _run(capsys, *args, "--stride", "4", "--out", str(tmp_path / "d.json"))
    assert code == 2 and err.count("\n") == 1 and "would interpolate" in err


def test_missing_weights_file_is_one_clear_line(capsys, tmp_path):
    code, out, err = _run(  # checked before the store is opened or any encoder is built
        capsys,
        *("--store", str(tmp_path / "no_store.zarr"), "--small", "vit_t", "--small-weights", str(tmp_path / "nope.pt")),
        *("--large", "vit_s", "--large-weights", "random", "--out", str(tmp_path / "r.json")),
    )
    assert code == 2 and err.startswith("error: --small-weights ") and err.count("\n") == 1
    assert "no such weights file" in err and not (tmp_path / "r.json").exists()
