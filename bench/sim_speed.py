"""Simulator speed: env overhead against raw MuJoCo, measured in the same process.

- state env steps/s (ee actions, IK every step) / raw mj_step for the same substeps (target >= 0.8)
- pixel env frames/s / raw physics + mujoco.Renderer for the same camera and size (target >= 0.9)
- reset time with and without randomized model edits (target <= 5 ms without)

Env and reference are timed alternately, best of 5 one-second rounds each, so other load hits both alike.

Run: MUJOCO_GL=egl .venv/bin/python bench/sim_speed.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from common import paired_rates, report  # noqa: E402

from tidyarm.sim import Randomization, So101Env  # noqa: E402


def env_stepper(env: So101Env):
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    actions = rng.uniform(-0.3, 0.3, size=(1024, *env.action_space.shape)).astype(np.float32)
    counter = iter(range(10**12))

    def step():
        index = next(counter)
        *_, terminated, truncated, _ = env.step(actions[index % 1024])
        if terminated or truncated:
            env.reset()
    return step


def reference_data(env: So101Env) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """A separate MjData in the env's reset state, servos holding the home pose: the same scene to simulate
    and to render (an arm at q = 0 would point at the horizon and render a different picture)."""
    env.reset(seed=0)
    data = mujoco.MjData(env.model)
    data.qpos[:], data.ctrl[:] = env.data.qpos, env.data.ctrl
    return env.model, data


def state_rows(seconds: float) -> list[dict]:
    rows = []
    for task in ("lift", "place"):
        env = So101Env(task, action_mode="ee", randomization=Randomization.off())
        model, data = reference_data(env)
        env_rate, raw_rate = paired_rates(env_stepper(env),
                                          lambda m=model, d=data, n=env.substeps: mujoco.mj_step(m, d, nstep=n),
                                          seconds)
        rows.append({"measure": f"{task} state env steps/s (ee)", "env": env_rate, "raw": raw_rate,
                     "ratio": env_rate / raw_rate, "target": ">= 0.8"})
    return rows


def pixel_rows(seconds: float) -> list[dict]:
    rows = []
    for size, cameras in ((64, ("wrist",)), (64, ("wrist", "front")), (128, ("front",))):
        env = So101Env("lift", obs_mode="pixels", image_size=size, cameras=cameras, randomization=Randomization.off())
        model, data = reference_data(env)
        renderer = mujoco.Renderer(model, size, size)

        def raw(m=model, d=data, r=renderer, n=env.substeps, cams=cameras):
            mujoco.mj_step(m, d, nstep=n)
            for camera in cams:
                r.update_scene(d, camera)
                r.render()
        env_rate, raw_rate = paired_rates(env_stepper(env), raw, seconds)
        rows.append({"measure": f"pixel env frames/s {size}px {'+'.join(cameras)}", "env": env_rate,
                     "raw": raw_rate, "ratio": env_rate / raw_rate, "target": ">= 0.9"})
        env.close()
        renderer.close()
    return rows


def reset_rows(resets: int = 300) -> list[dict]:
    rows = []
    for label, randomization in (("off", Randomization.off()), ("on (model edits)", Randomization())):
        env = So101Env("place", randomization=randomization)
        env.reset(seed=0)
        start = time.perf_counter()
        for seed in range(resets):
            env.reset(seed=seed)
        milliseconds = 1000 * (time.perf_counter() - start) / resets
        rows.append({"measure": f"reset ms, randomization {label}", "env": milliseconds,
                     "target": "<= 5" if label == "off" else "report"})
    return rows


def main(seconds: float = 1.0) -> None:
    rows = state_rows(seconds) + pixel_rows(seconds) + reset_rows()
    report("sim_speed", rows, ["measure", "env", "raw", "ratio", "target"])


if __name__ == "__main__":
    main()
