"""What inverse RL shares: state features, a learned-reward env wrapper and rollouts that score both rewards.

Features phi(s) in [0, 1]^k are read from the state vector alone (so stored transitions can be relabelled
without the simulator). Each one mirrors a term of the task's own reward in a smooth form that the state
determines exactly or nearly:
- reach: `reach` = 1 - tanh(10 d), the task's shaping term for the tool-to-target distance d, and `near` =
  1 - tanh(50 d), a smooth stand-in for the success indicator d < 2 cm (an indicator gives the critic no slope);
- lift: `reach` = 1 - tanh(5 d) of the cube to the open jaw's centre (the closeness half of the task's reach
  term), `height` = the cube's underside above its resting height over 8 cm, clipped (the task's lift term
  without its contact check, which the state cannot see), and `held` = reach x height: the cube is up *and*
  between the jaws, which tells a carried cube from a knocked or tumbling one.
Contacts and the success timer are not in the state, so no feature can copy them; the expert's feature
expectations still pin them down because a lifted, centred cube is a grasped one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from tidyarm.sim.scene import TABLE_TOP

FEATURE_NAMES = {"reach": ("reach", "near"), "lift": ("reach", "height", "held")}
LIFT_SPAN = 0.08  # m: the height at which lift's own lift term saturates (lift_height + lift_margin)


class StateFeatures:
    """phi: (B, obs_dim) state vectors -> (B, k) features in [0, 1] for one task (layout from the env)."""

    def __init__(self, env: gym.Env):
        base = env.unwrapped
        if base.task_name not in FEATURE_NAMES:
            raise ValueError(f"task {base.task_name!r}: inverse RL features exist for {sorted(FEATURE_NAMES)}")
        if base.obs_mode != "state":
            raise ValueError(f"obs_mode {base.obs_mode!r}: inverse RL features read the 'state' vector")
        self.task, self.layout = base.task_name, base.state_layout
        self.names = FEATURE_NAMES[self.task]
        # Nominal resting height of the cube's centre; randomized sizes move it by millimetres only.
        self.rest_z = TABLE_TOP + base.task.cube_half if self.task == "lift" else 0.0

    def __len__(self) -> int:
        return len(self.names)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.float32)
        single = states.ndim == 1
        states = states.reshape(-1, states.shape[-1])
        if self.task == "reach":
            distance = np.linalg.norm(states[:, self.layout["target_to_tool"]], axis=1)
            features = np.stack([1.0 - np.tanh(10.0 * distance), 1.0 - np.tanh(50.0 * distance)], axis=1)
        else:
            distance = np.linalg.norm(states[:, self.layout["cube_to_grasp"]], axis=1)
            reach = 1.0 - np.tanh(5.0 * distance)
            height = np.clip((states[:, self.layout["cube_pos"]][:, 2] - self.rest_z) / LIFT_SPAN, 0.0, 1.0)
            features = np.stack([reach, height, reach * height], axis=1)
        features = features.astype(np.float32)
        return features[0] if single else features


RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (obs, action, next_obs) -> (B,)


class LearnedRewardWrapper(gym.Wrapper):
    """Replaces the env reward by `reward_fn(obs, action, next_obs)`; the task's reward stays in
    info["true_reward"], so one rollout reports both."""

    def __init__(self, env: gym.Env, reward_fn: RewardFn):
        super().__init__(env)
        self.reward_fn = reward_fn
        self._obs = None

    def reset(self, **kwargs):
        self._obs, info = self.env.reset(**kwargs)
        return self._obs, info

    def step(self, action):
        next_obs, true_reward, terminated, truncated, info = self.env.step(action)
        action = np.asarray(action, dtype=np.float32)
        reward = float(self.reward_fn(self._obs[None], action[None], next_obs[None])[0])
        self._obs = next_obs
        return next_obs, reward, terminated, truncated, {**info, "true_reward": float(true_reward)}


@dataclass
class RolloutStats:
    """Means over the episodes of one policy."""

    true_return: float  # the task's own reward, summed
    learned_return: float  # the wrapper's reward, summed
    success_rate: float
    feature_expectations: np.ndarray  # (k,) (1 - gamma) * sum_t gamma^t phi(s_{t+1}): a point in [0, 1]^k


def rollout_stats(env: LearnedRewardWrapper, features: StateFeatures, policy: Callable[[np.ndarray], np.ndarray],
                  seeds: list[int], gamma: float, keep: Callable[[bool], bool] | None = None) -> RolloutStats:
    """Run `policy` once per seed; `keep(success)` drops episodes (e.g. failed expert demonstrations)."""
    true_returns, learned_returns, successes, expectations = [], [], [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        if hasattr(policy, "reset"):
            policy.reset()
        true_return = learned_return = 0.0
        mu, discount, success, done = np.zeros(len(features)), 1.0, False, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            mu += discount * features(obs)
            discount *= gamma
            true_return, learned_return = true_return + info["true_reward"], learned_return + reward
            success, done = success or info["success"], terminated or truncated
        if keep is None or keep(success):
            true_returns.append(true_return)
            learned_returns.append(learned_return)
            successes.append(success)
            expectations.append((1.0 - gamma) * mu)
    if not true_returns:
        raise RuntimeError(f"no episode kept out of {len(seeds)} (every one failed)")
    return RolloutStats(float(np.mean(true_returns)), float(np.mean(learned_returns)), float(np.mean(successes)),
                        np.mean(expectations, axis=0))
