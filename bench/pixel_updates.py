"""Gradient updates per second of the pixel learners at 16, 32 and 84 px (CPU, and CUDA when present).

Each learner updates from a replay buffer of random uint8 frames, so sampling, the uint8 -> float conversion
and augmentation count, as they do in training. Settings follow each method's recipe:
- drqv2: the front camera, 3 stacked frames (9 channels), DrQ-v2's conv trunk and 2 critics;
- vsac: wrist + front cameras, 1 frame (6 channels), critics on the privileged state (asymmetric);
- vsac-sym: the same with image critics (the encoder trained through the critic, as in DrQ);
- hil-own, hil-frozen: HIL fine-tuning (tidyarm.hil.config.DEFAULT_HIL_SAC, anchor on) with the critic's own
  encoder, or one frozen encoder that actor and critic share (no conv backward at all).
Batch 256, hidden (256, 256), 32 filters, feature 50. One "update" is one critic step (with its actor step).
Run: MUJOCO_GL=egl .venv/bin/python bench/pixel_updates.py [--sizes 16 32 84] [--seconds 10] [--threads 2]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch
import tyro

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

from tidyarm.hil.config import DEFAULT_HIL_SAC  # noqa: E402
from tidyarm.rl.drqv2 import DrQV2, DrQV2Config  # noqa: E402
from tidyarm.rl.pixel_actor import PixelNetConfig  # noqa: E402
from tidyarm.rl.replay import ReplayBuffer  # noqa: E402
from tidyarm.rl.vsac import VisualSAC, VisualSACConfig  # noqa: E402
from tidyarm.sim.env import PROPRIO_SIZE  # noqa: E402

STATE_DIM, ACTION_DIM = 33, 5  # lift's state vector and the ee action


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to time."""

    sizes: tuple[int, ...] = (16, 32, 84)
    """Image sizes (pixels per side)."""
    learners: tuple[str, ...] = ("drqv2", "vsac", "vsac-sym", "hil-own", "hil-frozen")
    """Learners to time."""
    seconds: float = 10.0
    """Wall time per measurement (after a warm-up of 3 updates)."""
    threads: int = 2
    """torch CPU threads."""
    batch_size: int = 256
    """Transitions per update."""


def make_learner(name: str, size: int, device: str, batch_size: int):
    if name == "drqv2":
        net = PixelNetConfig(cameras=("front",), image_size=size, frame_stack=3)
        return net, DrQV2(net, ACTION_DIM, DrQV2Config(batch_size=batch_size), device=device)
    net = PixelNetConfig(image_size=size)
    if name.startswith("hil-"):
        config = dataclasses.replace(DEFAULT_HIL_SAC, batch_size=batch_size, critic_encoder=name[len("hil-"):])
        learner = VisualSAC(net, ACTION_DIM, config, device=device)
        learner.set_anchor()
        return net, learner
    config = VisualSACConfig(batch_size=batch_size, asymmetric_critic=name == "vsac")
    return net, VisualSAC(net, ACTION_DIM, config, state_dim=STATE_DIM, device=device)


def random_replay(net: PixelNetConfig, rng: np.random.Generator, size: int = 2000) -> ReplayBuffer:
    image = gymnasium.spaces.Box(0, 255, (net.image_size, net.image_size, 3 * net.frame_stack), np.uint8)
    vector = {"proprio": PROPRIO_SIZE, "state": STATE_DIM}
    spaces = {key: gymnasium.spaces.Box(-1, 1, (dim,), np.float32) for key, dim in vector.items()}
    space = gymnasium.spaces.Dict({**spaces, **{camera: image for camera in net.cameras}})
    buffer = ReplayBuffer(space, ACTION_DIM, capacity=size)
    for _ in range(size):
        obs = {key: rng.integers(0, 256, sub.shape, dtype=np.uint8) if sub.dtype == np.uint8 else
               rng.uniform(-1, 1, sub.shape).astype(np.float32) for key, sub in space.spaces.items()}
        buffer.add(obs, rng.uniform(-1, 1, ACTION_DIM), float(rng.normal()), obs, 0.97, False)
    return buffer


def updates_per_second(name: str, size: int, device: str, config: BenchConfig) -> float:
    rng = np.random.default_rng(0)
    net, learner = make_learner(name, size, device, config.batch_size)
    buffer = random_replay(net, rng)

    def sample():
        return buffer.sample(config.batch_size, rng)

    learner.update_many(sample, 3)  # warm-up
    updates, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < config.seconds:
        learner.update_many(sample, 1)
        updates += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return updates / elapsed


def main(config: BenchConfig) -> None:
    torch.set_num_threads(config.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for name in config.learners:
        for size in config.sizes:
            row = {"learner": name, "px": size}
            for device in devices:
                row[f"updates/s {device}"] = updates_per_second(name, size, device, config)
            rows.append(row)
            print(row, flush=True)
    report("pixel_updates", rows, ["learner", "px"] + [f"updates/s {device}" for device in devices])


if __name__ == "__main__":
    main(tyro.cli(BenchConfig))
