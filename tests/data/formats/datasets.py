"""Tiny datasets made here, following the published layouts: our store, robomimic HDF5, and
LeRobot datasets that our export did not write (v3.0 with PNG image features, v2.1 with videos)."""

from __future__ import annotations

import json
import os

import numpy as np

from s2robot.data.replay_buffer import ReplayBuffer

CAMERAS = ("agentview", "robot0_eye_in_hand")


def frames(steps: int, size: int, seed: int) -> np.ndarray:
    """Smooth rendered-looking frames (gradients and a soft moving blob), as codecs see real scenes."""
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for t in range(steps):
        cx, cy = 0.3 + 0.4 * t / max(steps - 1, 1), 0.5 + 0.1 * np.sin(seed + t / 3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.02)
        rgb = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.0 * x], axis=-1) * (1 - blob[..., None])
        rgb += blob[..., None] * np.array([0.8, 0.15, 0.1])
        out.append(np.clip(rgb * 255, 0, 255).astype(np.uint8))
    return np.stack(out)


def make_store(path, n_episodes: int = 2, steps: int = 10, size: int = 32, cameras=CAMERAS, action_scale=0.9):
    rng = np.random.default_rng(0)
    env = {"cameras": list(cameras), "image_size": size, "control_freq": 20, "id": "CubePick-v0"}
    buffer = ReplayBuffer.create(path, attrs={"env": env, "expert": {"name": "ScriptedExpert"}, "versions": {}})
    for i in range(n_episodes):
        episode = {cam: frames(steps, size, seed=3 * i + j) for j, cam in enumerate(cameras)}
        episode["proprio"] = rng.normal(size=(steps, 9)).astype(np.float32)
        episode["action"] = rng.uniform(-action_scale, action_scale, (steps, 7)).astype(np.float32)
        episode["cube_pos"] = rng.normal(size=(steps, 3)).astype(np.float32)
        buffer.add_episode(episode, seed=100 + i, success=i % 2 == 0, episode_round=i)
    return path


ROBOMIMIC_ENV_ARGS = {
    "env_name": "Lift",
    "type": 1,
    "env_kwargs": {
        "robots": ["Panda"],
        "controller_configs": {"type": "OSC_POSE", "input_max": 1, "input_min": -1},
        "control_freq": 20,
        "camera_names": ["agentview", "robot0_eye_in_hand"],
        "camera_heights": 84,
        "camera_widths": 84,
    },
}


def make_robomimic(path, n_demos: int = 2, steps: int = 10, size: int = 32, sizes=None, actions=None, drop=()):
    """robomimic's image.hdf5 layout; ``sizes[i]``: demo i's image size, ``actions[i]``: its actions,
    ``drop``: obs keys left out."""
    import h5py

    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(ROBOMIMIC_ENV_ARGS)
        total = 0
        for i in range(n_demos):
            demo = data.create_group(f"demo_{i}")
            s = (sizes or {}).get(i, size)
            obs = {
                "agentview_image": frames(steps, s, seed=i),
                "robot0_eye_in_hand_image": frames(steps, s, seed=i + 7),
                "robot0_eef_pos": rng.normal(size=(steps, 3)),
                "robot0_eef_quat": rng.normal(size=(steps, 4)),
                "robot0_gripper_qpos": rng.normal(size=(steps, 2)),
                "object": rng.normal(size=(steps, 10)),
            }
            for key, value in obs.items():
                if key not in drop:
                    demo.create_dataset(f"obs/{key}", data=value)
                    demo.create_dataset(f"next_obs/{key}", data=value)
            act = (actions or {}).get(i, rng.uniform(-1, 1, (steps, 7)))
            demo.create_dataset("actions", data=act)
            demo.create_dataset("rewards", data=np.zeros(steps))
            demo.create_dataset("dones", data=np.zeros(steps, dtype=np.int64))
            demo.attrs["num_samples"] = steps
            total += steps
        data.attrs["total"] = total
        f.create_dataset("mask/train", data=np.array([b"demo_1"]))
        f.create_dataset("mask/valid", data=np.array([b"demo_0"]))
    return path


def make_lerobot_images(root, lengths=(4, 5), size=16, bad_frame: tuple[int, int] | None = None):
    """A LeRobot v3.0 dataset of another maker: one PNG image feature ``observation.images.top``,
    observation.state (4) and action (2); ``bad_frame=(episode, frame)``: that frame is 2 px larger."""
    import imageio.v3 as iio
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    rows, episodes, index = [], [], 0
    for e, n in enumerate(lengths):
        imgs = frames(n + 1, size + 2, seed=e)
        for t in range(n):
            img = imgs[t] if bad_frame == (e, t) else imgs[t, :size, :size]
            rows.append(
                {
                    "observation.images.top": {"bytes": iio.imwrite("<bytes>", img, extension=".png"), "path": None},
                    "observation.state": rng.normal(size=4).astype(np.float32).tolist(),
                    "action": rng.uniform(-2, 3, 2).astype(np.float32).tolist(),
                    "timestamp": t / 10,
                    "frame_index": t,
                    "episode_index": e,
                    "index": index,
                    "task_index": 0,
                }
            )
            index += 1
        episodes.append({"episode_index": e, "tasks": ["stack"], "length": n, "data/chunk_index": 0,
                         "data/file_index": 0, "dataset_from_index": index - n, "dataset_to_index": index})  # fmt: skip
    os.makedirs(os.path.join(root, "data", "chunk-000"))
    os.makedirs(os.path.join(root, "meta", "episodes", "chunk-000"))
    pq.write_table(pa.Table.from_pylist(rows), os.path.join(root, "data", "chunk-000", "file-000.parquet"))
    pq.write_table(
        pa.Table.from_pylist(episodes), os.path.join(root, "meta", "episodes", "chunk-000", "file-000.parquet")
    )
    features = {
        "observation.images.top": {"dtype": "image", "shape": [size, size, 3], "names": ["height", "width", "channel"]},
        "observation.state": {"dtype": "float32", "shape": [4], "names": None},
        "action": {"dtype": "float32", "shape": [2], "names": None},
    }
    info = {"codebase_version": "v3.0", "robot_type": "so100", "fps": 10, "features": features,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet", "video_path": None}  # fmt: skip
    with open(os.path.join(root, "meta", "info.json"), "w") as f:
        json.dump(info, f)
    return root


def robomimic_from_store(store_path, path, cameras=("agentview",), env_name="Lift", first_demo=0):
    """A store our simulator collected, written in robomimic's image.hdf5 layout (as
    dataset_states_to_obs writes it): ``obs/<camera>_image`` frames, the proprio split back into
    robot0_eef_pos / robot0_eef_quat / robot0_gripper_qpos, ``actions``, and env_args of robosuite
    Lift with a Panda under OSC_POSE at the store's rate and image size. Demos are numbered from
    ``first_demo``."""
    import h5py

    buffer = ReplayBuffer.open(store_path)
    env = buffer.attrs["env"]
    kwargs = {**ROBOMIMIC_ENV_ARGS["env_kwargs"], "control_freq": env["control_freq"], "camera_names": list(cameras)}
    kwargs.update(camera_heights=env["image_size"], camera_widths=env["image_size"])
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({**ROBOMIMIC_ENV_ARGS, "env_name": env_name, "env_kwargs": kwargs})
        for i in range(buffer.n_episodes):
            ep = buffer.get_episode(i)
            demo = data.create_group(f"demo_{first_demo + i}")
            proprio = ep["proprio"].astype(np.float64)
            obs = {f"{cam}_image": ep[cam] for cam in cameras}
            obs.update(
                robot0_eef_pos=proprio[:, :3], robot0_eef_quat=proprio[:, 3:7], robot0_gripper_qpos=proprio[:, 7:]
            )
            for key, value in obs.items():
                demo.create_dataset(f"obs/{key}", data=value)
            demo.create_dataset("actions", data=ep["action"].astype(np.float64))
            demo.attrs["num_samples"] = len(ep["action"])
        data.attrs["total"] = buffer.n_steps
    return path
