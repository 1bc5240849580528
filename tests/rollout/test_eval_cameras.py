"""Evaluation of a policy that sees several cameras: the env renders each of them (and the video
camera), and nothing the policy does not read."""

import pytest

from s2robot.errors import ConfigError
from s2robot.rollout.evaluate import eval_env_config, evaluate
from tests.two_cameras import CAMERAS, two_camera_run

WRIST = "robot0_eye_in_hand"


def test_env_renders_every_policy_camera_and_the_video_camera():
    ckpt = {
        "env": {"cameras": CAMERAS, "image_size": 32},
        "config": {"data": {"camera": "agentview", "cameras": CAMERAS}},
    }
    assert eval_env_config(ckpt, None, CAMERAS, want_video=True) == (
        {"cameras": CAMERAS, "image_size": 32},
        "agentview",
    )
    # the video camera is the first policy camera unless chosen; a chosen one is rendered too
    assert eval_env_config(ckpt, None, [WRIST, "agentview"], want_video=True)[1] == WRIST
    assert eval_env_config(ckpt, None, CAMERAS, want_video=True, video_camera="frontview") == (
        {"cameras": [*CAMERAS, "frontview"], "image_size": 32},
        "frontview",
    )
    assert eval_env_config(ckpt, None, CAMERAS, want_video=False, video_camera="frontview")[0]["cameras"] == CAMERAS
    # a camera the store held but the policy does not read is not rendered
    assert eval_env_config(ckpt, None, [WRIST], want_video=False)[0]["cameras"] == [WRIST]
    # a policy trained on a store whose run config listed fewer env cameras still gets all of its own
    narrow = {"env": {"cameras": ["agentview"], "image_size": 32}}
    assert eval_env_config(narrow, None, CAMERAS, want_video=False)[0]["cameras"] == CAMERAS
    # a vision-free baseline's video camera is the first camera of its demos
    assert eval_env_config(ckpt, None, None, want_video=True)[1] == "agentview"
    with pytest.raises(ConfigError, match=r"looks through cameras .* keep \['robot0_eye_in_hand'\] in env cameras"):
        eval_env_config(ckpt, {"cameras": ["agentview"]}, CAMERAS, want_video=False)


@pytest.mark.slow
def test_evaluation_renders_both_cameras_for_the_policy(tiny_store_2cam, tmp_path_factory, tmp_path):
    run = two_camera_run(tiny_store_2cam, tmp_path_factory.getbasetemp())
    r = evaluate(run, tmp_path, n_episodes=1, n_workers=1, n_videos=1, env_overrides={"horizon": 4}, progress=False)
    assert r["env"]["cameras"] == CAMERAS and r["video_camera"] == "agentview"
    assert r["n_episodes"] == 1 and r["episodes"][0]["length"] == 4 and len(r["videos"]) == 1
