"""Run a policy in the sim for a few episodes; collect outcomes and, optionally, video frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tidyarm.sim.env import So101Env
from tidyarm.sim.experts import make_expert

Policy = Callable[[object], np.ndarray]
POLICY_NAMES = ("expert", "random", "still")


@dataclass
class Episode:
    seed: int
    success: bool  # the task's success predicate held at some step
    episode_return: float
    length: int


def make_policy(name: str, env: So101Env) -> Policy:
    """A named built-in policy: the scripted expert, uniform random actions, or holding still."""
    if name == "expert":
        return make_expert(env)
    if name == "random":
        return lambda observation: env.action_space.sample()
    if name == "still":
        return lambda observation: still_action(env)
    raise ValueError(f"unknown policy {name!r}; valid: {list(POLICY_NAMES)}")


def still_action(env: So101Env) -> np.ndarray:
    """An action that keeps the arm where it is (zero motion; absolute joint modes hold current targets)."""
    if env.action_mode == "joint":
        low, high = env.kin.joint_low, env.kin.joint_high
        return (2.0 * (env.control.target - low) / (high - low) - 1.0).astype(np.float32)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[-1] = 1.0 if env.action_mode == "ee" else 0.0  # keep the jaw open
    return action


def video_frame(env: So101Env) -> np.ndarray:
    """One video frame: the front camera beside the wrist camera, 320x240 each."""
    from tidyarm.video import tile

    return tile([env.render_camera("front", (240, 320)), env.render_camera("wrist", (240, 320))], 2)


def run_episodes(env: So101Env, policy: Policy, episodes: int, seed: int = 0,
                 frame_fn: Callable[[So101Env], np.ndarray] | None = None) -> tuple[list[Episode], list[np.ndarray]]:
    """Episodes on seeds seed, seed+1, ...; `frame_fn(env)` (if given) is called after every reset and step."""
    results, frames = [], []
    for index in range(episodes):
        observation, info = env.reset(seed=seed + index)
        env.action_space.seed(seed + index)  # the random policy is repeatable too
        if hasattr(policy, "reset"):
            policy.reset()
        success, total, length, done = info["success"], 0.0, 0, False
        if frame_fn:
            frames.append(frame_fn(env))
        while not done:
            observation, reward, terminated, truncated, info = env.step(policy(observation))
            success, total, length = success or info["success"], total + reward, length + 1
            done = terminated or truncated
            if frame_fn:
                frames.append(frame_fn(env))
        results.append(Episode(seed + index, bool(success), float(total), length))
    return results, frames
