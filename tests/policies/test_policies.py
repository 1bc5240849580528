import pytest
import torch

from policies import make_policy

SHAPES = {"vision": (16,), "proprio": (9,)}


def _obs(b=4, t=1, shapes=SHAPES):
    return {k: torch.randn(b, t, *s) for k, s in shapes.items()}


@pytest.mark.parametrize("name,t", [("mlp", 1), ("transformer", 3)])
def test_heads_predict_action_chunks(name, t):
    torch.manual_seed(0)
    policy = make_policy(name, SHAPES, 7, horizon=5, hidden=32, n_obs_steps=t)
    obs, actions = _obs(t=t), torch.randn(4, 5, 7)
    assert policy.predict(obs).shape == (4, 5, 7)
    loss = policy.compute_loss(obs, actions)
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None for p in policy.parameters() if p.requires_grad)


def test_normaliser_round_trip_and_fit():
    policy = make_policy("mlp", SHAPES, 7, hidden=8)
    data = {"vision": torch.randn(100, 16) * 5 + 3, "proprio": torch.randn(100, 9), "action": torch.randn(100, 7) * 0.1}
    policy.normalizer.fit(data)
    z = policy.normalizer.normalize("vision", data["vision"])
    assert z.mean(0).abs().max() < 1e-4 and (z.std(0) - 1).abs().max() < 0.02
    assert torch.allclose(policy.normalizer.unnormalize("vision", z), data["vision"], atol=1e-4)
    # A constant input dimension does not explode.
    data["proprio"][:, 3] = 1.0
    policy.normalizer.fit(data)
    assert policy.normalizer.normalize("proprio", data["proprio"])[:, 3].abs().max() == 0


def test_transformer_uses_history_and_is_causal():
    torch.manual_seed(0)
    policy = make_policy("transformer", SHAPES, 7, n_obs_steps=3, horizon=2, hidden=32, dropout=0.0).eval()
    obs = _obs(b=1, t=3)
    changed = {k: v.clone() for k, v in obs.items()}
    changed["vision"][:, 0] += 3.0  # an older step
    assert not torch.allclose(policy(obs), policy(changed))
    # Causality: the first step's representation ignores later steps.
    with torch.no_grad():

        def first_step(o):
            steps = policy.obs_encoder({k: v.flatten(0, 1) for k, v in o.items()}).view(1, 3, -1)
            x = policy.transformer(policy.embed(steps) + policy.pos, mask=policy.causal_mask, is_causal=True)
            return x[:, 0]

        later = {k: v.clone() for k, v in obs.items()}
        later["vision"][:, 2] += 3.0
        assert torch.allclose(first_step(obs), first_step(later), atol=1e-5)


def test_attention_pool_over_tokens():
    shapes = {"vision": (5, 16), "proprio": (9,)}
    policy = make_policy("mlp", shapes, 7, hidden=32, visual_pool="attn")
    assert policy.predict(_obs(shapes=shapes)).shape == (4, 8, 7)
    with pytest.raises(ValueError, match="visual_pool=attn"):
        make_policy("mlp", shapes, 7)


def test_keypoints_read_where_a_token_stands_out():
    from policies.obs_encoder import SpatialSoftmaxPool

    torch.manual_seed(0)
    pool = SpatialSoftmaxPool(num_tokens=1 + 16, dim=8, out_dim=32, num_kp=4)
    with torch.no_grad():
        pool.to_maps.weight.zero_()
        pool.to_maps.bias.zero_()
        pool.to_maps.weight[0, 0] = 50.0  # keypoint 0 follows feature 0
    tokens = torch.zeros(2, 17, 8)
    tokens[0, 1 + 0, 0] = 1.0  # grid cell (row 0, col 0): top-left
    tokens[1, 1 + 15, 0] = 1.0  # grid cell (row 3, col 3): bottom-right
    kp = pool.keypoints(tokens)[:, 0]
    assert torch.allclose(kp[0], torch.tensor([-1.0, -1.0]), atol=1e-3)
    assert torch.allclose(kp[1], torch.tensor([1.0, 1.0]), atol=1e-3)
    assert pool(tokens).shape == (2, 32)

    policy = make_policy("mlp", {"vision": (17, 8), "proprio": (9,)}, 7, hidden=32, visual_pool="keypoints")
    obs = _obs(shapes={"vision": (17, 8), "proprio": (9,)})
    policy.compute_loss(obs, torch.randn(4, 8, 7)).backward()
    with pytest.raises(ValueError, match="square token grid"):
        SpatialSoftmaxPool(num_tokens=1 + 15, dim=8, out_dim=32)


def test_unknown_policy():
    with pytest.raises(ValueError, match="known policies: mlp, transformer"):
        make_policy("diffusion", SHAPES, 7)


def test_each_camera_input_has_its_own_pool():
    from policies.obs_encoder import AttentionPool, SpatialSoftmaxPool

    shapes = {"vision_agentview": (17, 8), "vision_robot0_eye_in_hand": (17, 8), "proprio": (9,)}
    policy = make_policy(
        "transformer",
        shapes,
        7,
        n_obs_steps=2,
        hidden=32,
        visual_pool="attn",
        visual_pools={"vision_robot0_eye_in_hand": "keypoints"},
    )
    proj = policy.obs_encoder.proj
    assert isinstance(proj["vision_agentview"], AttentionPool)
    assert isinstance(proj["vision_robot0_eye_in_hand"], SpatialSoftmaxPool)
    obs = _obs(t=2, shapes=shapes)
    policy.compute_loss(obs, torch.randn(4, 8, 7)).backward()
    # the fused embedding reads both cameras
    changed = {**obs, "vision_robot0_eye_in_hand": obs["vision_robot0_eye_in_hand"] + 1.0}
    assert not torch.allclose(policy(obs), policy(changed))
    with pytest.raises(ValueError, match=r"visual_pools names inputs \['vision_wrist'\]"):
        make_policy("mlp", shapes, 7, visual_pool="attn", visual_pools={"vision_wrist": "attn"})
    with pytest.raises(ValueError, match="visual pool of vision_agentview must be one of"):
        make_policy("mlp", shapes, 7, visual_pool="attn", visual_pools={"vision_agentview": "max"})
