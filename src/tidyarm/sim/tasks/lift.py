"""Lift: grasp the cube and hold it at least 5 cm above the table for 1 s."""

from __future__ import annotations

import mujoco
import numpy as np

from tidyarm.sim.scene import TABLE_TOP
from tidyarm.sim.tasks.base import CubeTask, StepScore


class Lift(CubeTask):
    name = "lift"
    objects = ("cube",)
    max_episode_steps = 60
    # The grasp term pays as soon as both pads touch the cube, so RL finds the grasp early;
    # lifting pays only while grasped, so flicking the cube upward earns nothing.
    default_weights = {"reach": 1.0, "grasp": 1.0, "lift": 2.0, "success": 1.0}
    lift_height = 0.05  # m between the table and the cube's underside
    lift_margin = 0.03  # m above lift_height at which the lift term saturates
    hold_seconds = 1.0

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        self.place_cube(data, self.sample_on_table(rng), rng)
        self.held_steps = 0

    @property
    def hold_steps(self) -> int:
        return int(np.ceil(self.hold_seconds * self.control_hz))

    def features(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        return self.cube_features(data)

    def height(self, data: mujoco.MjData) -> float:
        """Height of the cube's underside above the table (m)."""
        return float(self.cube_pos(data)[2] - self.cube_half - TABLE_TOP)

    def score(self, data: mujoco.MjData) -> StepScore:
        reach, grasped, _ = self.grasp_terms(data)
        height = self.height(data)
        # The lift term saturates a margin above the success height: a policy that stops exactly at the
        # threshold would keep dipping below it and never hold the cube up for the full second.
        lifted = min(max(height / (self.lift_height + self.lift_margin), 0.0), 1.0) if grasped else 0.0
        self.held_steps = self.held_steps + 1 if grasped and height >= self.lift_height else 0
        success = self.held_steps >= self.hold_steps
        terms = {"reach": reach, "grasp": float(grasped), "lift": float(lifted), "success": float(success)}
        return StepScore(terms, success, failed=self.fell_off_table(data))
