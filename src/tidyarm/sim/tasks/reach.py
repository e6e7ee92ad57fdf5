"""Reach: bring the tool point (between the jaw tips) to a random target in the air."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from tidyarm.sim.scene import TABLE_TOP
from tidyarm.sim.tasks.base import StepScore, Task


class Reach(Task):
    name = "reach"
    objects = ("target",)
    max_episode_steps = 50
    default_weights = {"reach": 1.0, "success": 1.0}
    success_distance = 0.02  # m

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mocap = self.model.body("target").mocapid[0]

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        xy = self.sample_on_table(rng, radius=(0.15, 0.28))
        data.mocap_pos[self.mocap] = [*xy, TABLE_TOP + rng.uniform(0.03, 0.15)]

    def target(self, data: mujoco.MjData) -> np.ndarray:
        return data.mocap_pos[self.mocap].copy()

    def features(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        target = self.target(data)
        return {"target_pos": target, "target_to_tool": target - data.site_xpos[self.kin.site_id]}

    def score(self, data: mujoco.MjData) -> StepScore:
        distance = math.hypot(*(self.target(data) - data.site_xpos[self.kin.site_id]))
        success = distance < self.success_distance
        return StepScore({"reach": 1.0 - np.tanh(10.0 * distance), "success": float(success)}, success)
