"""The deployment loop: a saved pixel policy drives a Robot through RobotEnv, episode after episode.

Logged per run: loop timing (policy inference and the whole tick, against the control period), safety-layer
counts (clips, rejects, holds), and for a simulated robot the oracle success (evaluation only). Ctrl-C or any
error stops the arm safely: it holds its measured position before the loop exits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tidyarm.eval import resolve_policy
from tidyarm.rl.checkpoint import write_json
from tidyarm.rl.policy_io import LoadedPolicy, check_policy_fits_env
from tidyarm.robot.robot_env import RobotEnv
from tidyarm.robot.sim_robot import ROBOT_PRESETS, make_robot
from tidyarm.stats import wilson_interval

DEPLOY_SEED = 1_000_000  # the evaluation seeds (tidyarm.eval.EVAL_SEED): scenes training never used


@dataclass(frozen=True)
class DeployCommand:
    """Run a saved pixel policy on a robot: loop timing, safety counts, and oracle success on a simulated robot."""

    robot: str = "sim-gap"
    """Robot: sim (no reality gap), sim-gap (the held-out gap preset) or sim-gap-mild (a smaller one)."""
    policy: str = "pretrained:lift-pixels"
    """A saved pixel policy: pretrained:<name> or a run directory."""
    episodes: int = 20
    """Episodes to run (scene seeds seed .. seed+episodes-1)."""
    seed: int = DEPLOY_SEED
    """Seed of the first scene."""
    realtime: bool = False
    """Pace ticks to the control rate (a real arm's clock); False runs as fast as the CPU allows."""
    max_steps: int | None = None
    """Steps per episode (default: the task's limit)."""
    threads: int = 1
    """Torch CPU threads for policy inference."""
    out: Path | None = None
    """Where to write deploy.json (default runs/deploy-<robot>)."""

    def __post_init__(self) -> None:
        if self.robot not in ROBOT_PRESETS:
            raise ValueError(f"unknown robot {self.robot!r}; valid: {sorted(ROBOT_PRESETS)}")
        if self.episodes < 1:
            raise ValueError(f"episodes = {self.episodes}: expected at least 1")
        if self.threads < 1:
            raise ValueError(f"threads = {self.threads}: expected at least 1")


def load_pixel_policy(name: str) -> LoadedPolicy:
    """A LoadedPolicy of kind 'pixels' (only image policies can run on a robot without simulator state)."""
    spec = resolve_policy(name)
    if spec.loaded is None or spec.loaded.kind != "pixels":
        kind = "a built-in" if spec.loaded is None else f"a {spec.loaded.kind!r} policy"
        raise ValueError(f"policy {name!r} is {kind}; a robot gives camera frames and joints only, so deploy runs "
                         "pixel policies (e.g. pretrained:lift-pixels)")
    return spec.loaded


def make_robot_env(robot_name: str, loaded: LoadedPolicy, realtime: bool = False, seed: int = 0,
                   max_steps: int | None = None) -> RobotEnv:
    """The policy's env config on a simulated robot whose cameras render at image_size x supersample."""
    config = loaded.env_config
    side = config.image_size * config.supersample
    robot = make_robot(robot_name, task=config.task, realtime=realtime, seed=seed, control_hz=config.control_hz,
                       camera_size=(side, side), cameras=config.cameras)
    return RobotEnv(robot, config, max_episode_steps=max_steps)


def deploy(config: DeployCommand, log=print) -> dict:
    """Run the episodes; returns (and writes) the summary. The arm holds on Ctrl-C or an error."""
    torch.set_num_threads(config.threads)
    loaded = load_pixel_policy(config.policy)
    env = make_robot_env(config.robot, loaded, config.realtime, config.seed, config.max_steps)
    check_policy_fits_env(loaded, env, config.policy)
    robot, period = env.robot, 1.0 / env.control_hz
    episodes, inference, loop, stopped = [], [], [], None
    try:
        for index in range(config.episodes):
            episodes.append(_episode(env, loaded, config.seed + index, inference, loop))
            log(f"episode {index + 1}/{config.episodes} seed {config.seed + index}: oracle success "
                f"{episodes[-1]['oracle_success']}, {episodes[-1]['steps']} steps")
    except KeyboardInterrupt:
        stopped = "interrupted (Ctrl-C)"
        robot.hold("interrupted")
    except Exception:
        if robot.is_connected:
            robot.hold("error")
        env.close()
        raise
    loop_ms = 1000 * np.asarray(loop or [0.0])
    successes = sum(e["oracle_success"] for e in episodes)
    low, high = wilson_interval(successes, max(len(episodes), 1))
    summary = {"robot": robot.describe(), "policy": config.policy, "episodes": len(episodes), "seed": config.seed,
               "stopped": stopped, "oracle_success_rate": successes / max(len(episodes), 1),
               "oracle_success_ci95": [low, high], "control_period_ms": 1000 * period,
               "loop_ms": {"p50": float(np.median(loop_ms)), "p95": float(np.percentile(loop_ms, 95)),
                           "max": float(loop_ms.max())},
               "inference_ms_p50": float(1000 * np.median(inference or [0.0])),
               "over_budget_ticks": int((loop_ms > 1000 * period).sum()), "ticks": len(loop),
               "lost_ticks": int(getattr(robot, "lost_ticks", 0)), "safety": dict(robot.safety.counts),
               "per_episode": episodes}
    env.close()
    out = config.out or Path("runs") / f"deploy-{config.robot}"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "deploy.json", summary)
    summary["path"] = str(out / "deploy.json")
    return summary


def _episode(env: RobotEnv, policy: LoadedPolicy, seed: int, inference: list, loop: list) -> dict:
    obs, info = env.reset(seed=seed)
    policy.reset()
    success, steps, done = False, 0, False
    while not done:
        slept = getattr(env.robot, "slept", 0.0)
        start = time.perf_counter()
        action = policy(obs)
        inference.append(time.perf_counter() - start)
        obs, _, terminated, truncated, info = env.step(action)
        loop.append(time.perf_counter() - start - (getattr(env.robot, "slept", 0.0) - slept))
        success = success or info.get("oracle_success", False)
        steps, done = steps + 1, terminated or truncated
    return {"seed": seed, "oracle_success": bool(success), "steps": steps}
