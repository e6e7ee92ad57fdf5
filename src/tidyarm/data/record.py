"""Record demonstrations in the sim: from the scripted expert, or from a human through a Teleop device.

Every source acts in the env's `ee` mode (dx, dy, dz, d_roll, gripper); what is stored is LeRobot's
SO-101 features (so101_features.py): the observation before each step and, as `action`, the joint
targets the controller sent at that step, so a dataset recorded in `ee` mode replays and trains in
`joint` mode. With `noise` > 0 (DART, Laskey et al. 2017) the expert's motion commands are executed with
Gaussian noise added while `action` stays the joint targets of its clean command: the demos then visit the
states just off the expert's path that a learned policy drifts into, labelled with how the expert recovers.
With `misses` > 0 that share of episodes starts with a missed grasp (`MissedGrasp`): the expert aims beside
the cube and closes its jaw on nothing, labelled throughout with the true expert's command, which from there
reopens, rises and tries again. A policy imitating clean demos has never seen a miss, so it cannot retry.
Episodes run to the task's time limit (a policy trained on them also learns to hold still
once done); an episode counts as successful if the task's success predicate held at some step, as in
`tidyarm eval`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from tidyarm.data.episodes import Episodes, episodes_from_frames
from tidyarm.data.so101_features import (
    ACTION,
    action_from_env,
    features_from_env,
    features_spec,
    gripper_range,
    to_lerobot_units,
)
from tidyarm.sim.env import So101Env
from tidyarm.sim.experts import make_expert
from tidyarm.sim.randomize import Randomization

DEFAULT_IMAGE_SIZE = 96  # px: small enough to record fast on a CPU, large enough for image policies
TASK_INSTRUCTIONS = {
    "reach": "Move the gripper to the target.",
    "lift": "Pick up the cube.",
    "place": "Put the cube in the bowl.",
}


@dataclass
class RecordedEpisode:
    seed: int
    """Seed the env was reset with."""
    frames: list[dict[str, np.ndarray]]
    """One dict of LeRobot features per step (observation before the step, action sent at it)."""
    success: bool
    """The task's success predicate held at some step."""


def make_record_env(task: str, cameras: tuple[str, ...] = (), image_size: int = DEFAULT_IMAGE_SIZE,
                    randomize: bool = True) -> So101Env:
    """The env recordings are made in: ee actions, state observations plus the requested cameras."""
    randomization = Randomization() if randomize else Randomization.off()
    if cameras:
        return So101Env(task, obs_mode="state+pixels", action_mode="ee", image_size=image_size,
                        cameras=tuple(cameras), randomization=randomization)
    return So101Env(task, obs_mode="state", action_mode="ee", randomization=randomization)


def record_episode(env: So101Env, act: Callable[[object], np.ndarray], seed: int,
                   on_step: Callable[[int, dict], bool] | None = None, noise: float = 0.0,
                   misses: float = 0.0) -> RecordedEpisode:
    """Reset on `seed` and run `act` to the end of the episode, recording a frame per step.

    `on_step(step, info)` is called after every step; returning True ends the episode early
    (a teleoperator's keep / discard / redo key). `noise`: std of the DART noise on the motion commands
    (ee mode; the gripper command is left clean so that noise never drops a held cube). `misses`: the
    probability that the episode opens with a missed grasp (lift and place only).
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise = {noise}: expected a standard deviation in 0 .. 1 (actions span [-1, 1])")
    if not 0.0 <= misses <= 1.0:
        raise ValueError(f"misses = {misses}: expected a probability in 0 .. 1")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    if hasattr(act, "reset"):
        act.reset()
    # Drawn only when asked for, so that a seed's DART noise stays what it was.
    miss = MissedGrasp(env, rng) if misses > 0 and rng.random() < misses else None
    frames, success = [], False
    for step in range(env.max_episode_steps):
        frame = features_from_env(env, obs)
        action, label = act(obs), None
        misled = miss(obs) if miss is not None else None
        if misled is not None:
            label, action = clean_targets(env, action), misled
        elif noise > 0:
            label = clean_targets(env, action)
            action = np.asarray(action, np.float32).copy()
            action[:-1] = np.clip(action[:-1] + noise * rng.standard_normal(len(action) - 1), -1.0, 1.0)
        obs, _, terminated, truncated, info = env.step(action)
        frame[ACTION] = action_from_env(env) if label is None else label
        frames.append(frame)
        success |= bool(info["success"])
        stop = on_step(step, info) if on_step else False
        if terminated or truncated or stop:
            break
    return RecordedEpisode(seed, frames, success)


class MissedGrasp:
    """A recorded detour: the expert, aiming 2.5-3.5 cm to one side of the cube across its jaw's closing axis
    (so that the jaw comes down and closes beside it), drives until the jaw has closed on nothing or
    `max_steps` have passed; then it gives the arm back."""

    def __init__(self, env: So101Env, rng: np.random.Generator, max_steps: int = 40):
        if env.unwrapped.task_name not in ("lift", "place"):
            raise ValueError(f"misses need a grasping task (lift, place); got {env.unwrapped.task_name!r}")
        self.expert = make_expert(env)
        self.expert.aim_sideways = rng.choice([-1.0, 1.0]) * rng.uniform(0.025, 0.035)
        self.steps_left, self.missed = max_steps, False

    def __call__(self, obs) -> np.ndarray | None:
        """The misled expert's action, or None once the miss is over."""
        self.missed = self.missed or self.expert.jaw() < self.expert.missed_jaw
        self.steps_left -= 1
        return None if self.missed or self.steps_left < 0 else self.expert(obs)


def clean_targets(env: So101Env, action: np.ndarray) -> np.ndarray:
    """The joint targets (LeRobot units) that `action` would command now, leaving the controller untouched."""
    control = env.unwrapped.control
    saved = {name: value.copy() for name, value in vars(control).items() if isinstance(value, np.ndarray)}
    targets = control.targets(np.asarray(action, np.float32), env.unwrapped.data).copy()
    for name, value in saved.items():
        setattr(control, name, value)
    return to_lerobot_units(targets, gripper_range(env))


def expert_episodes(env: So101Env, seed: int = 0, noise: float = 0.0,
                    misses: float = 0.0) -> Iterator[RecordedEpisode]:
    """Scripted-expert episodes on seeds seed, seed+1, ... (successful or not), without end."""
    expert = make_expert(env)
    index = 0
    while True:
        yield record_episode(env, expert, seed + index, noise=noise, misses=misses)
        index += 1


def collect_successful(episodes: Iterator[RecordedEpisode], wanted: int,
                       max_attempts: int | None = None) -> tuple[list[RecordedEpisode], int]:
    """The first `wanted` successful episodes and how many failed ones were dropped on the way."""
    max_attempts = max_attempts or 3 * wanted + 10
    kept, dropped = [], 0
    for episode in episodes:
        if episode.success:
            kept.append(episode)
        else:
            dropped += 1
        if len(kept) == wanted:
            break
        if len(kept) + dropped >= max_attempts:
            raise RuntimeError(f"only {len(kept)} of {wanted} episodes succeeded in {max_attempts} attempts")
    return kept, dropped


def record_expert_episodes(task: str, episodes: int, seed: int = 0, cameras: tuple[str, ...] = (),
                           image_size: int = DEFAULT_IMAGE_SIZE, randomize: bool = True,
                           noise: float = 0.0, misses: float = 0.0) -> Episodes:
    """`episodes` successful scripted-expert episodes, in memory (failed attempts are skipped).

    Seeds run seed, seed+1, ... in order, so the same arguments give the same Episodes.
    """
    if episodes < 1:
        raise ValueError(f"episodes = {episodes}: expected at least 1")
    env = make_record_env(task, tuple(cameras), image_size, randomize)
    kept, _ = collect_successful(expert_episodes(env, seed, noise, misses), episodes)
    instruction = TASK_INSTRUCTIONS.get(task, task)
    result = episodes_from_frames(env.control_hz, features_spec(env, tuple(cameras)), [e.frames for e in kept],
                                  [instruction] * len(kept))
    env.close()
    return result
