"""Scripted-expert demonstrations for the offline half of RLPD batches (no human in the loop)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym

from tidyarm.rl.replay import NStepAccumulator, ReplayBuffer
from tidyarm.sim.env import EnvConfig
from tidyarm.sim.experts import make_expert

DEMO_SEED = 2_000_000  # demonstration episodes use their own seeds, apart from training and evaluation


def collect_demos(env_config: EnvConfig, episodes: int, seed: int, rl, max_attempts_factor: int = 3,
                  make_env: Callable[[], gym.Env] | None = None) -> ReplayBuffer:
    """A buffer of `episodes` successful expert episodes, stored as the same n-step transitions as online data.

    `rl` is the learner's config (its n_step and gamma shape the transitions); `make_env` builds the env when
    the learner's observations need a wrapper (e.g. frame stacking), and defaults to `env_config.make`.
    """
    env = (make_env or env_config.make)()
    expert = make_expert(env)
    max_steps = env.unwrapped.max_episode_steps
    buffer = ReplayBuffer(env.observation_space, env.action_space.shape[0], capacity=episodes * max_steps)
    kept = attempts = 0
    while kept < episodes and attempts < episodes * max_attempts_factor:
        transitions, success = _expert_episode(env, expert, DEMO_SEED + 1000 * seed + attempts, rl)
        attempts += 1
        if success:  # a failed demonstration would teach the failure
            for transition in transitions:
                buffer.add(*transition)
            kept += 1
    if kept < episodes:
        raise RuntimeError(f"the {env_config.task} expert succeeded in only {kept} of {attempts} episodes")
    return buffer


def _expert_episode(env, expert, seed: int, rl):
    accumulator = NStepAccumulator(rl.n_step, rl.gamma)
    obs, _ = env.reset(seed=seed)
    expert.reset()
    transitions, success, done = [], False, False
    while not done:
        action = expert(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        transitions += accumulator.push(obs, action, reward, next_obs, terminated, truncated)
        success, done, obs = success or info["success"], terminated or truncated, next_obs
    return transitions, success
