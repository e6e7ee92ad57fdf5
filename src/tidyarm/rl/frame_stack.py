"""Frame stacking for pixel observations: each camera's last k frames side by side on the channel axis.

One `FrameStacker` serves training (inside the `FrameStack` env wrapper, so replay stores stacked frames)
and deployment (inside a pixel policy, so a robot driver can hand over single frames).
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np


class FrameStacker:
    """Keeps the last `k` frames of each camera; `reset` repeats the first frame k times."""

    def __init__(self, cameras: tuple[str, ...], k: int):
        if k < 1:
            raise ValueError(f"frame_stack = {k}: expected an integer >= 1")
        self.cameras, self.k = tuple(cameras), int(k)
        self._frames: dict[str, deque] = {}

    def reset(self, obs: dict) -> dict:
        self._frames = {camera: deque([obs[camera]] * self.k, maxlen=self.k) for camera in self.cameras}
        return self._stacked(obs)

    def push(self, obs: dict) -> dict:
        if not self._frames:
            raise RuntimeError("FrameStacker.push before reset: call reset with the episode's first observation")
        for camera in self.cameras:
            self._frames[camera].append(obs[camera])
        return self._stacked(obs)

    def _stacked(self, obs: dict) -> dict:
        """Non-image keys pass through; each camera becomes (H, W, 3k), oldest frame first."""
        stacked = dict(obs)
        for camera in self.cameras:
            stacked[camera] = np.concatenate(self._frames[camera], axis=-1)
        return stacked


class FrameStack(gym.Wrapper):
    """Env wrapper: the stacked observation of `FrameStacker` for the named cameras of a Dict observation."""

    def __init__(self, env: gym.Env, cameras: tuple[str, ...], k: int):
        super().__init__(env)
        self.stacker = FrameStacker(cameras, k)
        spaces = dict(env.observation_space.spaces)
        for camera in cameras:
            height, width, channels = spaces[camera].shape
            spaces[camera] = gym.spaces.Box(0, 255, shape=(height, width, channels * k), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self.stacker.reset(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.stacker.push(obs), reward, terminated, truncated, info
