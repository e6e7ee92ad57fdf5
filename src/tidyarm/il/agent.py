"""An imitation policy driving So101Env: env observation -> LeRobot features -> action -> joint-mode action.

Policies are trained on LeRobot features (joint states in degrees, joint targets as actions), so they act
in the env's absolute `joint` action mode; the env they act in is rebuilt from the EnvConfig saved beside
them (`il_env_config`), the same factory for periodic evaluation in training and for `tidyarm eval`.
"""

from __future__ import annotations

import numpy as np
import torch

from tidyarm.data.so101_features import env_action_from_joint_targets, features_from_env
from tidyarm.il.base import ILPolicy
from tidyarm.il.features import InputSpec
from tidyarm.sim.env import EnvConfig

IMAGE_PREFIX = "observation.images."


def il_env_config(task: str, spec: InputSpec, randomize: bool = True) -> EnvConfig:
    """The env an imitation policy with these inputs acts in: joint actions, the cameras it reads (if any)."""
    cameras = tuple(name.removeprefix(IMAGE_PREFIX) for name, _ in spec.images)
    if not cameras:
        return EnvConfig(task=task, obs_mode="state", action_mode="joint", randomize=randomize)
    sizes = {shape for _, shape in spec.images}
    if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise ValueError(f"camera inputs have image shapes {sorted(sizes)}; the env renders every camera at one "
                         "square size")
    return EnvConfig(task=task, obs_mode="state+pixels", action_mode="joint", image_size=next(iter(sizes))[0],
                     cameras=cameras, randomize=randomize)


class ILAgent:
    """Callable policy for rollout.run_episodes; `bind(env)` before the first episode."""

    def __init__(self, policy: ILPolicy):
        self.policy, self.env = policy, None

    def bind(self, env, source: str = "policy") -> ILAgent:
        """Use this env; refuse one whose action mode or observation features do not fit the policy."""
        if env.unwrapped.action_mode != "joint":
            raise ValueError(f"{source} is an imitation policy over joint targets; the env has action_mode "
                             f"{env.unwrapped.action_mode!r}, expected 'joint'")
        self.env = env
        return self

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs) -> np.ndarray:
        if self.env is None:
            raise RuntimeError("ILAgent.bind(env) must be called before acting")
        # A batch of one runs fastest on one thread; more threads spin and, on a busy 2-core machine,
        # cost ~25x the CPU time (measured 3.4 vs ~90 ms per ACT step). Restore the caller's setting.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            targets = self.policy.select_action(features_from_env(self.env, obs))
        finally:
            torch.set_num_threads(threads)
        return env_action_from_joint_targets(self.env, targets)

    __call__ = act
