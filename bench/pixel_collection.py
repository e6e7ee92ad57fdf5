"""Pixel data collection: env frames/s in this process against N worker processes, and replay memory per frame.

For each observation setting (image size x supersample; lift, obs_mode "pixels", wrist + front cameras,
randomization on, uniform random ee actions) the benchmark times
- the plain env stepped in this process (the "in-process" row, ratio 1), and
- `make_vector_env` with N = 1, 2, 4 async workers, counting every worker's steps,
alternately, best of `--repeats` rounds each, so load from other processes hits all alike. `ratio` is the
row's frames/s over the in-process frames/s. `start s` is the time to start the workers and reset them.
`bytes/transition` is one transition of tidyarm.rl.replay.ReplayBuffer for that observation space (obs and
next_obs, both cameras, proprio, action, reward, discount, terminated); `GiB per 100k` a 100k-transition buffer.

Run: MUJOCO_GL=egl .venv/bin/python bench/pixel_collection.py [--seconds 3 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from common import rate, report  # noqa: E402

from tidyarm.rl.replay import ReplayBuffer  # noqa: E402
from tidyarm.sim.env import EnvConfig, So101Env  # noqa: E402
from tidyarm.sim.vector import make_vector_env  # noqa: E402

# (image_size, supersample): the rendered image is image_size * supersample px square.
SETTINGS = ((32, 4), (64, 1), (16, 8))
IN_PROCESS = 0  # worker count that stands for the plain env in this process
COLUMNS = ["image", "supersample", "rendered", "workers", "frames/s", "ratio", "start s", "bytes/transition",
           "GiB per 100k"]


def plain_stepper(env: So101Env) -> Callable[[], None]:
    """One env step per call with a random action; resets by hand, as a single-env collector does."""
    rng = np.random.default_rng(0)
    env.reset(seed=0)

    def step():
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return step


def vector_stepper(vec) -> Callable[[], None]:
    """One step of every worker per call; the vector env resets finished episodes itself."""
    rng = np.random.default_rng(0)
    space = vec.single_action_space

    def step():
        vec.step(rng.uniform(space.low, space.high, size=(vec.num_envs, *space.shape)).astype(np.float32))
    return step


def transition_bytes(env: So101Env, capacity: int = 1000) -> float:
    """Bytes one stored transition takes in our ReplayBuffer for this env's observation and action spaces."""
    buffer = ReplayBuffer(env.observation_space, action_dim=env.action_space.shape[0], capacity=capacity)
    return sum(array.nbytes for array in buffer._arrays.values()) / capacity


def start_vector_env(config: EnvConfig, workers: int, seed: int):
    """An async vector env, reset, and the seconds that took (worker start-up dominates)."""
    start = time.perf_counter()
    vec = make_vector_env(config, workers)
    vec.reset(seed=[seed + index for index in range(workers)])
    return vec, time.perf_counter() - start


def best_rates(steppers: dict[int, Callable[[], None]], seconds: float, repeats: int) -> dict[int, float]:
    """Best-of-`repeats` calls/s of every stepper, measured in turn within each round."""
    best = dict.fromkeys(steppers, 0.0)
    for _ in range(repeats):
        for workers, step in steppers.items():
            best[workers] = max(best[workers], rate(step, seconds))
    return best


def setting_rows(image_size: int, supersample: int, worker_counts: list[int], seconds: float,
                 repeats: int) -> list[dict]:
    config = EnvConfig(task="lift", obs_mode="pixels", image_size=image_size, supersample=supersample)
    plain = config.make()
    vectors, start_seconds = {}, {IN_PROCESS: None}
    try:
        for workers in worker_counts:
            vectors[workers], start_seconds[workers] = start_vector_env(config, workers, seed=0)
        steppers = {IN_PROCESS: plain_stepper(plain), **{n: vector_stepper(vec) for n, vec in vectors.items()}}
        calls = best_rates(steppers, seconds, repeats)
    finally:
        plain.close()
        for vec in vectors.values():
            vec.close()
    frames = {workers: calls[workers] * max(workers, 1) for workers in calls}
    per_transition = transition_bytes(plain)
    common = {"image": image_size, "supersample": supersample, "rendered": image_size * supersample,
              "bytes/transition": per_transition, "GiB per 100k": per_transition * 100_000 / 2**30,
              "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    return [{**common, "workers": "in-process" if workers == IN_PROCESS else workers, "frames/s": frames[workers],
             "ratio": frames[workers] / frames[IN_PROCESS], "start s": start_seconds[workers]}
            for workers in frames]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timing round per row")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per row; the best counts")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="async worker counts")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other processes make the numbers noisy)")
    rows = []
    for image_size, supersample in SETTINGS:
        rows += setting_rows(image_size, supersample, args.workers, args.seconds, args.repeats)
    report("pixel_collection", rows, COLUMNS)


if __name__ == "__main__":
    main()
