"""The Hydra tree against its schemas (s2robot/config): every yaml and preset composes into its
typed config, misspelt keys and wrong types fail while composing, bad values fail validation
with one line that names the key."""

import copy
import functools
from pathlib import Path

import pytest
import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from s2robot.cli import composition_error_line
from s2robot.config import GROUPS, PRIMARY, register_configs, validate
from s2robot.encoders import ENCODERS
from s2robot.errors import ConfigError
from tests.conftest import compose

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
register_configs()  # tests/conftest.py composes without the command-line entry that registers them

# What a primary config needs to pass validation on a machine without weights or runs.
RUNNABLE = {"train_policy": ["encoder.weights=random"], "eval_policy": ["checkpoint=runs/x"]}
PRESETS = [
    ("train_policy", ["+experiment=demo_cpu", "encoder.weights=random"]),
    ("train_policy", ["policy=transformer", "encoder.weights=random"]),
    ("train_policy", ["encoder.feature=tokens", "policy.visual_pool=keypoints", "encoder.weights=random"]),
    ("pretrain_mae", ["+pretrain=cpu"]),
    ("scaling_study", ["study=small"]),
    ("scaling_study", ["study=paper"]),
    ("scaling_study", ["study=cpu_agentview"]),
    ("scaling_study", ["study=cpu_agentview_tokens"]),
    ("scaling_study", ["study=cpu_wrist_tokens"]),
    ("eval_policy", ["checkpoint=runs/x", "+env.horizon=200"]),
]


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@functools.cache
def _composed(name: str, *overrides: str) -> DictConfig:
    return compose([*RUNNABLE.get(name, []), *overrides], config_name=name)


def _with(name: str, *overrides: str) -> DictConfig:
    """The composed config with ``key=value`` / ``+key=value`` overrides assigned afterwards (as
    Hydra would, types checked; a Hydra compose per case costs 0.25 s). Group choices compose."""
    groups = tuple(o for o in overrides if "." not in o.partition("=")[0] and o.startswith(("policy=", "study=")))
    cfg = copy.deepcopy(_composed(name, *groups))
    for item in overrides:
        if item in groups:
            continue
        key, _, value = item.partition("=")
        OmegaConf.update(cfg, key.lstrip("+"), yaml.safe_load(value), merge=True, force_add=key.startswith("+"))
    return cfg


def test_one_yaml_per_registered_encoder():
    names = {p.stem for p in (CONFIGS / "encoder").glob("*.yaml")}
    assert names == set(ENCODERS)
    for name in names:
        cfg = _yaml(CONFIGS / "encoder" / f"{name}.yaml")
        assert cfg["name"] == name


def test_demo_experiment_reads_the_default_store():
    cfg = compose(["+experiment=demo_cpu"])
    default = compose([])
    # The demo shares the default store (and so its feature caches and baselines).
    assert cfg.data.store == default.data.store == "data/cube_pick_224.zarr"
    assert (cfg.encoder.name, cfg.encoder.img_size, list(cfg.scales)) == ("vit_t", 64, [1, 2])
    assert (cfg.encoder.feature, cfg.policy.visual_pool) == ("cls", "none")
    assert cfg.eval.enabled


def test_yamls_start_with_their_schema():
    for name in PRIMARY:
        if name == "serve_policy" and "serve_policy_schema" not in str(_yaml(CONFIGS / "serve_policy.yaml")):
            continue  # the serving side's yaml: wired by its owner (test_serve_schema_mirrors_its_yaml)
        assert _yaml(CONFIGS / f"{name}.yaml")["defaults"][0] == f"{name}_schema", name
    for path in CONFIGS.glob("*/*.yaml"):
        if path.parent.name in ("encoder", "env", "policy"):
            group = {"policy": f"{path.stem}_policy"}.get(path.parent.name, path.parent.name)
            assert _yaml(path)["defaults"][0] == f"/schema/{group}@_here_", path
            assert group in GROUPS


@pytest.mark.parametrize("name", [n for n in PRIMARY if n != "serve_policy"])
def test_every_primary_yaml_composes_into_its_schema(name):
    cfg = compose(RUNNABLE.get(name, []), config_name=name)
    assert OmegaConf.get_type(cfg) is PRIMARY[name][0]
    OmegaConf.to_object(cfg)  # every schema key has a value in the yaml (no ??? left)
    validate(name, cfg)


@pytest.mark.parametrize("name,overrides", PRESETS, ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_every_preset_and_group_option_composes(name, overrides):
    cfg = compose(overrides, config_name=name)
    OmegaConf.to_object(cfg)
    validate(name, cfg)


@pytest.mark.parametrize(
    "path",
    sorted([*(CONFIGS / "encoder").glob("*.yaml"), *(CONFIGS / "policy").glob("*.yaml")]),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_every_group_option_fills_its_schema(path):
    # merged without Hydra (a compose costs 0.25 s): the default options compose in the tests above
    values = _yaml(path)
    schema = GROUPS[{"policy": f"{path.stem}_policy"}.get(path.parent.name, path.parent.name)]
    cfg = OmegaConf.merge(OmegaConf.structured(schema), {k: v for k, v in values.items() if k != "defaults"})
    OmegaConf.to_object(cfg)


def test_serve_schema_mirrors_its_yaml():
    keys = set(_yaml(CONFIGS / "serve_policy.yaml")) - {"defaults", "hydra"}
    assert keys == set(PRIMARY["serve_policy"][0].__dataclass_fields__)
    cfg = compose([], config_name="serve_policy")
    typed = OmegaConf.merge(OmegaConf.structured(PRIMARY["serve_policy"][0]), cfg)
    validate("serve_policy", typed)


def test_constants_match_the_code_they_mirror():
    from policies import POLICIES
    from policies.obs_encoder import VISUAL_POOLS
    from s2robot.config import encoder, evaluate, policy, train
    from s2robot.encoders import FEATURES
    from s2robot.encoders.fast import DTYPE_CHOICES
    from s2robot.training.train import INPUTS

    assert encoder.FEATURES == FEATURES and train.INPUTS == INPUTS
    assert encoder.DTYPES == DTYPE_CHOICES and evaluate.DTYPES is encoder.DTYPES
    assert policy.POLICY_NAMES == tuple(POLICIES) and policy.VISUAL_POOLS == VISUAL_POOLS


@pytest.mark.parametrize(
    "name,overrides,needle",
    [
        ("train_policy", ["train.epoch=1"], "train.epoch=1: no such key in train (did you mean epochs?)"),
        ("train_policy", ["env.imagesize=64"], "env.imagesize=64: no such key in env (did you mean image_size?)"),
        ("train_policy", ["policy.num_heads=2"], "policy.num_heads=2: no such key in policy"),
        ("train_policy", ["train.lr=abc"], "train.lr=abc: Value 'abc'"),
        ("train_policy", ["train.epochs=2.5"], "train.epochs=2.5"),
        ("train_policy", ["train.epochs=null"], "train.epochs=null: a value is required"),
        ("train_policy", ["scales=1"], "scales"),
        (
            "train_policy",
            ["encoder=vit_zz"],
            "encoder=vit_zz: no such option in encoder (did you mean vit_t?); options: ",
        ),
        ("collect_demos", ["expert.nois=0.1"], "expert.nois=0.1: no such key in expert (did you mean noise?)"),
        ("scaling_study", ["grid=[{encoder: vit_t, scale: [[1]]}]"], "scale"),
        ("pretrain_mae", ["mae.mask_ratio=high"], "mae.mask_ratio=high"),
    ],
)
def test_unknown_keys_and_wrong_types_fail_while_composing(name, overrides, needle):
    with pytest.raises(HydraException) as e:
        compose(overrides, config_name=name)
    line = composition_error_line(e.value)
    assert needle in line and "\n" not in line


@pytest.mark.parametrize(
    "name,overrides,needle",
    [
        # + adds a key even to a typed node: the schema walk catches it
        ("train_policy", ["+train.epoch=1"], "train.epoch: no such key in train (did you mean epochs?)"),
        ("train_policy", ["+policy.num_heads=8"], "policy.num_heads: no such key in policy"),
        ("train_policy", ["+foo=1"], "foo: no such key in the top level"),
        ("train_policy", ["train.lr=-0.001"], "train.lr=-0.001: must be > 0"),
        ("train_policy", ["train.epochs=0"], "train.epochs=0: must be >= 1"),
        ("train_policy", ["train.batch_size=0"], "train.batch_size=0"),
        ("train_policy", ["env.image_size=0"], "env.image_size=0: must be >= 1"),
        (
            "train_policy",
            ["env.cameras=[agentveiw]"],
            "camera 'agentveiw' is not in robosuite's Lift scene (did you mean",
        ),
        ("train_policy", ["data.camera=wrist"], "data.camera=wrist"),
        ("train_policy", ["data.val_fraction=1.0"], "data.val_fraction=1.0: must be in [0, 1)"),
        ("train_policy", ["data.n_episodes=1"], "data.n_episodes=1"),
        ("train_policy", ["data.seed_start=99999"], "data.seed_start=99999"),
        ("train_policy", ["scales=[]"], "scales=[]: scales is empty"),
        ("train_policy", ["scales=[0,1]"], "scales=[0,1]: each scale must be a positive integer"),
        ("train_policy", ["policy.n_action_steps=9"], "policy.n_action_steps=9: must be in [1, 8]"),
        ("train_policy", ["policy.n_obs_steps=2"], "policy.n_obs_steps=2: the mlp head is memoryless"),
        ("train_policy", ["policy=transformer", "policy.num_heads=3"], "policy.num_heads=3: must divide policy.hidden"),
        ("train_policy", ["policy.name=transformer"], "policy.name=transformer: must match the policy group"),
        ("train_policy", ["policy.dropout=1.0"], "policy.dropout=1.0"),
        ("train_policy", ["encoder.feature=tokens"], "policy.visual_pool=none: encoder.feature=tokens needs a pool"),
        ("train_policy", ["policy.visual_pool=attn"], "policy.visual_pool=attn: pools over the token grid"),
        ("train_policy", ["encoder.feature=cls2"], "encoder.feature=cls2: must be one of cls, mean, tokens"),
        ("train_policy", ["encoder.img_size=30"], "encoder.img_size=30: must be a positive multiple of"),
        ("train_policy", ["inputs=[vision,depth]"], "inputs=[vision,depth]"),
        ("train_policy", ["inputs=[]"], "inputs=[]"),
        ("train_policy", ["device=gpu"], "device=gpu: must be auto, cpu, cuda or cuda:N"),
        ("train_policy", ["eval.n_episodes=0"], "eval.n_episodes=0: must be >= 1"),
        ("train_policy", ["eval.n_workers=0"], "eval.n_workers=0"),
        ("train_policy", ["eval.dtype=fp16"], "eval.dtype=fp16: must be one of auto, fp32, bf16"),
        ("train_policy", ["encoder.dtype=half"], "encoder.dtype=half: must be one of auto, fp32, bf16"),
        ("train_policy", ["env.placement.x_range=[0.1,-0.1]"], "env.placement.x_range=[0.1,-0.1]"),
        ("collect_demos", ["n_episodes=-1"], "n_episodes=-1: must be >= 1"),
        ("collect_demos", ["env.cameras=[agentveiw]"], "env.cameras=[agentveiw]: camera 'agentveiw'"),
        ("collect_demos", ["expert.noise=-0.1"], "expert.noise=-0.1"),
        ("collect_demos", ["seed_start=-1"], "seed_start=-1"),
        ("eval_policy", ["checkpoint=null"], "checkpoint= is required"),
        ("eval_policy", ["checkpoint=x", "n_episodes=0"], "n_episodes=0: must be >= 1"),
        ("eval_policy", ["checkpoint=x", "seed_start=5"], "seed_start=5: must be >= 100000"),
        ("eval_policy", ["checkpoint=x", "dtype=fp16"], "dtype=fp16: must be one of auto, fp32, bf16"),
        ("eval_policy", ["checkpoint=x", "+env.horizn=200"], "env.horizn=200: not an env key (did you mean horizon?)"),
        ("eval_policy", ["checkpoint=x", "+env.horizon=abc"], "env.horizon=abc"),
        ("eval_policy", ["checkpoint=x", "+env.horizon=0"], "env.horizon=0: must be >= 1"),
        ("eval_policy", ["checkpoint=x", "+env.cameras=[agentveiw]"], "camera 'agentveiw'"),
        ("pretrain_mae", ["scales=[2]"], "scales=[2]: must start at 1"),
        ("pretrain_mae", ["mae.mask_ratio=1.0"], "mae.mask_ratio=1.0: must be in (0, 1)"),
        ("pretrain_mae", ["train.steps=0"], "train.steps=0"),
        ("pretrain_mae", ["train.min_lr=0.1"], "train.min_lr=0.1"),
        ("pretrain_mae", ["data.aug.crop_scale=[0.5,2]"], "data.aug.crop_scale=[0.5,2.0]"),
        ("pretrain_mae", ["train.betas=[0.9]"], "train.betas=[0.9]"),
        ("probe_encoder", ["n_folds=1"], "n_folds=1: must be >= 2"),
        ("probe_encoder", ["camera=agentveiw"], "camera=agentveiw: camera 'agentveiw'"),
        ("scaling_study", ["seeds=[]"], "seeds=[]"),
        ("scaling_study", ["grid=[{encoder: vit_t, scales: [[]]}]"], "grid[0].scales=[]"),
        ("scaling_study", ["+weights.vit_tt=x.pt"], "weights.vit_tt=x.pt: 'vit_tt' is not an encoder (did you mean"),
        ("scaling_study", ["eval_episodes=0"], "eval_episodes=0"),
    ],
)
def test_bad_values_fail_validation_in_one_line_naming_the_key(name, overrides, needle):
    cfg = _with(name, *overrides)
    with pytest.raises(ConfigError) as e:
        validate(name, cfg)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_encoder_lists_the_known_ones():
    from s2robot.encoders import UnknownEncoderError

    with pytest.raises(UnknownEncoderError, match="known encoders: .*vit_t"):
        validate("train_policy", compose(["encoder.name=vit_zz"]))
    with pytest.raises(UnknownEncoderError, match="known encoders"):
        validate("scaling_study", compose(["grid=[{encoder: vit_zz, scales: [[1]]}]"], config_name="scaling_study"))


def test_missing_demo_encoder_says_which_command_makes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/pretrain/demo/encoder.pt here
    with pytest.raises(ConfigError) as e:
        validate("train_policy", compose(["+experiment=demo_cpu"]))
    msg = str(e.value)
    assert "encoder.weights=runs/pretrain/demo/encoder.pt" in msg and "make demo" in msg
    assert (
        "python scripts/pretrain_mae.py +pretrain=cpu scales=[1] train.steps=1000 hydra.run.dir=runs/pretrain/demo"
    ) in msg
    with pytest.raises(ConfigError, match="encoder=vit_s scales=.* hydra.run.dir=runs/mae/x"):
        validate(
            "probe_encoder",
            compose(["encoder=vit_s", "encoder.weights=runs/mae/x/encoder.pt"], config_name="probe_encoder"),
        )
    (tmp_path / "runs/pretrain/demo").mkdir(parents=True)
    (tmp_path / "runs/pretrain/demo/encoder.pt").write_bytes(b"")
    validate("train_policy", compose(["+experiment=demo_cpu"]))  # there: the weights loader takes over


def test_study_keeps_its_free_form_maps():
    cfg = compose(
        ["study=small", "weights.vit_t=/w/t.pt", "+img_size.vit_b=null", "allow_random=true"],
        config_name="scaling_study",
    )
    assert cfg.weights.vit_t == "/w/t.pt" and cfg.img_size.vit_b is None
    assert cfg.weights.vit_s == "runs/mae/study_cpu/vit_s/encoder.pt"  # ${weights_dir} interpolation
    assert [e.encoder for e in cfg.grid] == ["vit_t", "vit_s"] and list(cfg.grid[1].scales[1]) == [1, 2]
