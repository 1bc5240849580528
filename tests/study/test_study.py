"""The scaling study: cost columns against the paper, the report on synthetic finished runs,
resumability with a stubbed cell runner, and a missing-weights cell that does not stop the grid."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from s2robot.checkpoint import checkpoint_hash
from s2robot.study import plan as study_plan
from s2robot.study.grid import cell_state, config_mismatches, read_status, run_grid, subprocess_launcher
from s2robot.study.plan import plan_cells
from s2robot.study.report import build_report, cost_columns
from s2robot.study.runs import find_run_dirs, run_info
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[2]
Z = 1.959963984540054


# -- the cost columns against the paper's Table 10 -------------------------------------------


@pytest.mark.parametrize(
    "encoder,scales,img_size,gmacs,params",
    [
        ("mvp_b", (1,), None, 17.5, 86e6),  # ViT-B/16 [224]
        ("mvp_l", (1,), 224, 61.6, 307e6),  # ViT-L/16 [224] (MVP's own ViT-L is trained at 256 px)
        ("mvp_b", (1, 2), None, 87.9, 86e6),  # ViT-B/16-S² [224, 448]
    ],
)
def test_cost_columns_match_paper_table_10(encoder, scales, img_size, gmacs, params):
    c = cost_columns(encoder, scales, img_size)
    assert c["gmacs"] == pytest.approx(gmacs, rel=0.02)
    assert c["params"] == pytest.approx(params, rel=0.02)


# -- synthetic run directories ---------------------------------------------------------------


def _set(d: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def config_from_overrides(overrides) -> dict:
    """What train_policy.py would resolve for these overrides, as far as the study looks."""
    cfg = {
        "inputs": ["vision", "proprio"],
        "seed": 0,
        "scales": [1],
        "train": {"epochs": 100},
        "encoder": {"name": "mvp_b", "weights": "auto", "img_size": None, "seed": 0},
        "data": {"store": "data/s.zarr", "camera": "agentview"},
        "eval": {"n_episodes": 50},
    }
    for item in overrides:
        key, _, value = item.partition("=")
        value = yaml.safe_load(value)
        if key == "encoder":
            key = "encoder.name"
        if not key.startswith("hydra."):
            _set(cfg, key, value)
    return cfg


def fake_run(
    run_dir: Path,
    overrides,
    *,
    successes: int | None,
    epoch: int | None = None,
    n_episodes: int | None = None,
    hydra_dir: bool = True,
) -> Path:
    """A run directory as train_policy.py leaves it: .hydra/config.yaml, checkpoint.pt with its
    epoch and config, and (if ``successes`` is given) eval/eval.json."""
    cfg = config_from_overrides(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    if hydra_dir:
        (run_dir / ".hydra").mkdir(exist_ok=True)
        (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    epoch = cfg["train"]["epochs"] if epoch is None else epoch
    torch.save({"format": "s2robot.policy", "train_state": {"epoch": epoch}, "config": cfg}, run_dir / "checkpoint.pt")
    if successes is not None:
        n = cfg["eval"]["n_episodes"] if n_episodes is None else n_episodes
        vision = "vision" in cfg["inputs"]
        weights = cfg["encoder"]["weights"]
        (run_dir / "eval").mkdir(exist_ok=True)
        (run_dir / "eval" / "eval.json").write_text(
            json.dumps(
                {
                    "successes": successes,
                    "n_episodes": n,
                    "success_rate": successes / n,
                    "checkpoint_hash": checkpoint_hash(run_dir),
                    "inputs": cfg["inputs"],
                    "encoder": cfg["encoder"]["name"] if vision else None,
                    "scales": cfg["scales"] if vision else None,
                    "encoder_weights": ("random:seed0" if weights == "random" else "md5:" + "ab" * 16)
                    if vision
                    else None,
                    "episodes": [{"seed": 100_000 + i, "success": i < successes} for i in range(n)],
                }
            )
        )
    return run_dir


def wilson_reference(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def vision_ov(enc, scales, seed, weights="auto"):
    return [
        f"encoder={enc}",
        f"scales=[{','.join(map(str, scales))}]",
        f"seed={seed}",
        f"encoder.weights={weights}",
        "train.epochs=5",
        "eval.n_episodes=20",
    ]


# -- the report ---------------------------------------------------------------------------


def test_report_from_synthetic_runs(tmp_path):
    study = tmp_path / "study"
    outcomes = {("mvp_b", (1,)): [8, 10], ("mvp_b", (1, 2)): [14, 12], ("mvp_l", (1,)): [10, 11]}
    for (enc, scales), ks in outcomes.items():
        for seed, k in enumerate(ks):
            fake_run(
                study / f"{enc}_s{'-'.join(map(str, scales))}_seed{seed}", vision_ov(enc, scales, seed), successes=k
            )
    for seed, k in enumerate([0, 0]):
        fake_run(
            study / f"blind_seed{seed}",
            ["inputs=[proprio]", f"seed={seed}", "train.epochs=5", "eval.n_episodes=20"],
            successes=k,
        )
    fake_run(
        study / "privileged_seed0",
        ["inputs=[proprio,cube_pos,cube_yaw]", "train.epochs=5", "eval.n_episodes=20"],
        successes=19,
    )
    # a failed cell (missing weights) and an interrupted one (checkpoint at epoch 3 of 5)
    failed = study / "mvp_l_s1-2_seed0"
    failed.mkdir()
    (failed / "study_cell.json").write_text(
        json.dumps(
            {
                "status": "failed",
                "reason": "weights for encoder 'mvp_l' not found at /x/vitl.pth and offline. To fix: download",
            }
        )
    )
    fake_run(study / "mvp_l_s1-2_seed1", vision_ov("mvp_l", (1, 2), 1), successes=None, epoch=3)

    infos = [run_info(d) for d in find_run_dirs(study)]
    assert len(infos) == 11
    missing = [{"cell": Path(i["run_dir"]).name, "reason": i["reason"]} for i in infos if not i["finished"]]
    assert sorted(m["cell"] for m in missing) == ["mvp_l_s1-2_seed0", "mvp_l_s1-2_seed1"]

    def measure(info, device):  # stands in for the probe + latency of a real encoder
        return {"probe_cm": 1.5, "probe_mean_cm": 8.0, "latency_ms": 2.0, "latency_device": "test device"}

    rows = build_report(study, infos, missing, measure=measure, device="cpu", log=lambda m: None)
    by = {(r["kind"], r["encoder"], tuple(r["scales"])): r for r in rows}
    s2 = by[("vision", "mvp_b", (1, 2))]
    assert s2["success_mean"] == pytest.approx((14 / 20 + 12 / 20) / 2)
    assert (s2["successes"], s2["episodes"]) == (26, 40)
    assert (s2["ci_lo"], s2["ci_hi"]) == pytest.approx(wilson_reference(26, 40))
    assert s2["gmacs"] == pytest.approx(87.9, rel=0.02) and s2["probe_cm"] == 1.5
    blind = by[("blind", "blind", ())]
    assert blind["ci_lo"] == 0.0 and blind["ci_hi"] == pytest.approx(Z * Z / (40 + Z * Z))  # 0/40
    assert by[("privileged", "privileged", ())]["success_mean"] == pytest.approx(0.95)

    table = list(csv.DictReader(open(study / "scaling.csv")))
    assert len(table) == 5
    row = next(r for r in table if r["encoder"] == "mvp_b" and r["scales"] == "1-2")
    assert float(row["ci95_lo_pooled_wilson"]) == pytest.approx(wilson_reference(26, 40)[0], abs=1e-4)
    assert row["per_seed_success"] == "0.7000 0.6000" and float(row["probe_cm"]) == 1.5
    md = (study / "scaling.md").read_text()
    assert "Wilson score interval over all evaluation episodes of all seeds pooled" in md
    assert "`mvp_l_s1-2_seed0` | weights for encoder 'mvp_l' not found" in md
    assert "`mvp_l_s1-2_seed1` | checkpoint at epoch 3 of 5" in md
    assert "WARNING" not in md and "*blind baseline*" in md
    png = (study / "scaling.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert json.loads((study / "measurements.json").read_text())  # cached for the next rebuild


def test_probe_reads_the_features_the_head_was_given(tmp_path, monkeypatch):
    import s2robot.encoders
    from s2robot.study.measure import measure_encoder

    run = fake_run(
        tmp_path / "r",
        vision_ov("vit_t", (1, 2), 0, "random")
        + ["encoder.feature=tokens", "encoder.output_grid=largest", "policy.visual_pool=keypoints"],
        successes=5,
    )
    info = run_info(run)
    assert (info["feature"], info["output_grid"]) == ("tokens", "largest")
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("built")

    monkeypatch.setattr(s2robot.encoders, "build_encoder", spy)
    with pytest.raises(RuntimeError, match="built"):
        measure_encoder(info, "cpu")
    assert (seen["feature"], seen["output_grid"], seen["scales"]) == ("tokens", "largest", [1, 2])


def test_random_weights_are_flagged(tmp_path):
    study = tmp_path / "s"
    fake_run(study / "a", vision_ov("vit_t", (1,), 0, weights="random"), successes=3)
    rows = build_report(study, [run_info(study / "a")], [], measure=None, log=lambda m: None)
    assert rows[0]["random_weights"]
    assert "do NOT test the paper's claim" in (study / "scaling.md").read_text()


def test_report_only_finds_multirun_layout(tmp_path):
    # python train_policy.py -m ... writes multirun/<date>/<time>/<job number>/ with .hydra inside
    root = tmp_path / "multirun" / "2025-01-01" / "12-00-00"
    for job, (enc, scales) in enumerate([("vit_t", (1,)), ("vit_t", (1, 2))]):
        fake_run(root / str(job), vision_ov(enc, scales, 0), successes=5 + job)
    (root / "multirun.yaml").write_text("{}")
    dirs = find_run_dirs(tmp_path / "multirun")
    assert [d.name for d in dirs] == ["0", "1"]
    rows = build_report(root, [run_info(d) for d in dirs], [], log=lambda m: None)
    assert [(r["encoder"], tuple(r["scales"]), r["successes"]) for r in rows] == [
        ("vit_t", (1,), 5),
        ("vit_t", (1, 2), 6),
    ]
    # the paired test reads the runs' per-episode records: one episode only [1,2] picks
    paired = "| vit_t [1, 2] | vit_t [1] | S² against its own [1] | 20 | 6 | 5 | 1 | 0 | 1 |"
    assert paired in (root / "scaling.md").read_text()


# -- resumability ------------------------------------------------------------------------


class StubRunner:
    """Records the commands; "trains" by writing a finished run for the cell's overrides."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], fail

    def __call__(self, argv, log_path):
        overrides = argv[2:]
        run_dir = Path(next(a for a in overrides if a.startswith("hydra.run.dir=")).partition("=")[2])
        self.calls.append((run_dir.name, overrides))
        if any(f in run_dir.name for f in self.fail):
            log_path.write_text("loading...\nerror: encoder.weights=/no/such.pth: no such file. download it\n")
            return 2
        fake_run(run_dir, [o for o in overrides if o not in ("train.resume=true", "eval.enabled=true")], successes=7)
        return 0


def grid_cells():
    common = ["train.epochs=5", "eval.n_episodes=20"]
    return plan_cells(
        [{"encoder": "vit_t", "scales": [[1], [1, 2]]}],
        [0],
        common,
        {"vit_t": ["encoder.weights=random"]},
        baselines=["blind"],
    )


def test_finished_cells_are_skipped_and_unfinished_rerun(tmp_path):
    cells = grid_cells()
    assert [c.name for c in cells] == ["vit_t_s1_seed0", "vit_t_s1-2_seed0", "blind_seed0"]
    runner = StubRunner()
    statuses = run_grid(cells, tmp_path, 5, 20, runner, log=lambda m: None)
    assert [s["status"] for s in statuses] == ["finished"] * 3 and len(runner.calls) == 3

    runner.calls.clear()
    statuses = run_grid(cells, tmp_path, 5, 20, runner, log=lambda m: None)
    assert all(s.get("skipped") for s in statuses) and runner.calls == []

    # interrupted training: checkpoint at epoch 2 of 5 -> resumed
    fake_run(tmp_path / "vit_t_s1_seed0", cells[0].overrides, successes=None, epoch=2)
    (tmp_path / "vit_t_s1_seed0" / "eval" / "eval.json").unlink()
    # crashed before the first checkpoint -> wiped and rerun from scratch
    (tmp_path / "vit_t_s1-2_seed0" / "checkpoint.pt").unlink()
    (tmp_path / "vit_t_s1-2_seed0" / "stale.txt").write_text("x")
    # evaluated on fewer episodes than planned -> evaluation redone (resume at the last epoch)
    fake_run(tmp_path / "blind_seed0", cells[2].overrides, successes=3, n_episodes=10)
    statuses = run_grid(cells, tmp_path, 5, 20, runner, log=lambda m: None)
    calls = dict(runner.calls)
    assert "train.resume=true" in calls["vit_t_s1_seed0"]
    assert "train.resume=true" not in calls["vit_t_s1-2_seed0"]
    assert not (tmp_path / "vit_t_s1-2_seed0" / "stale.txt").exists()
    assert "train.resume=true" in calls["blind_seed0"]
    assert [s["status"] for s in statuses] == ["finished"] * 3


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    cell = grid_cells()[0]
    fake_run(tmp_path, [*cell.overrides[:-2], "train.epochs=9", "eval.n_episodes=20"], successes=None, epoch=2)
    state, why = cell_state(tmp_path, 5, 20, cell.overrides)
    assert state == "fresh" and "train.epochs" in why
    assert config_mismatches(["encoder=vit_s"], {"encoder": {"name": "vit_t"}}) == [
        "encoder: checkpoint 'vit_t' vs planned 'vit_s'"
    ]


@pytest.mark.slow
def test_missing_weights_cell_does_not_stop_the_grid(tmp_path):
    """The vit_s cell runs the real train_policy.py with a weights file that does not exist."""
    cells = plan_cells(
        [{"encoder": "vit_s", "scales": [[1]]}, {"encoder": "vit_t", "scales": [[1]]}],
        [0],
        ["train.epochs=5", "eval.n_episodes=20", f"data.store={tmp_path}/none.zarr"],
        {"vit_s": [f"encoder.weights={tmp_path}/missing.pth"], "vit_t": ["encoder.weights=random"]},
    )
    real, stub = subprocess_launcher(1), StubRunner()

    def runner(argv, log_path):
        return real(argv, log_path) if "encoder=vit_s" in argv else stub(argv, log_path)

    statuses = run_grid(cells, tmp_path, 5, 20, runner, log=lambda m: None)
    assert [s["status"] for s in statuses] == ["failed", "finished"]
    assert statuses[0]["returncode"] == 2
    assert f"encoder.weights={tmp_path}/missing.pth: no such file" in statuses[0]["reason"]
    assert read_status(tmp_path / "vit_s_s1_seed0")["reason"] == statuses[0]["reason"]
    info = run_info(tmp_path / "vit_s_s1_seed0")
    assert not info["finished"] and "no such file" in info["reason"]


# -- the Hydra presets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset,n_cells,kinds", [("paper", 15, {"vision"}), ("small", 14, {"vision", "blind", "privileged"})]
)
def test_presets_plan_the_grid(preset, n_cells, kinds, tmp_path):
    cfg = compose([f"study={preset}", f"weights_dir={tmp_path}"], config_name="scaling_study")
    cells, randomised = study_plan.plan(cfg)
    assert len(cells) == n_cells and {c.kind for c in cells} == kinds and randomised == []
    assert all(f"data.store={cfg.store}" in c.overrides for c in cells)
    if preset == "small":  # the MAE files do not exist: random only when asked
        assert f"encoder.weights={tmp_path}/vit_t/encoder.pt" in cells[0].overrides
        cfg = compose([f"study={preset}", f"weights_dir={tmp_path}", "allow_random=true"], config_name="scaling_study")
        cells, randomised = study_plan.plan(cfg)
        assert "encoder.weights=random" in cells[0].overrides and randomised == ["vit_t", "vit_s"]
