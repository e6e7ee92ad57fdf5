"""Place: put the cube into the bowl and let go; success when it rests inside, untouched."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from tidyarm.sim.scene import BOWL_INNER_RADIUS, BOWL_WALL_HEIGHT, TABLE_TOP
from tidyarm.sim.tasks.base import CubeTask, StepScore


class Place(CubeTask):
    name = "place"
    objects = ("cube", "bowl")
    max_episode_steps = 100
    default_weights = {"reach": 1.0, "grasp": 1.0, "carry": 2.0, "in_bowl": 2.0, "released": 1.0}
    carry_height = 0.06  # m: how high above the rim the cube should travel
    rest_speed = 0.05  # m/s: slower than this counts as resting

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bowl_body = self.model.body("bowl").id

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        bowl = self.sample_on_table(rng, radius=(0.17, 0.27))
        for _ in range(100):  # rejection sampling: keep the cube well clear of the bowl
            cube = self.sample_on_table(rng)
            if np.linalg.norm(cube - bowl) > BOWL_INNER_RADIUS + 0.06:
                break
        self.model.body_pos[self.bowl_body, :2] = bowl
        self.place_cube(data, cube, rng)

    def bowl_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.xpos[self.bowl_body].copy()

    def features(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        bowl = self.bowl_pos(data)
        return {**self.cube_features(data), "bowl_pos": bowl, "cube_to_bowl": bowl - self.cube_pos(data)}

    def in_bowl(self, data: mujoco.MjData) -> bool:
        offset = self.cube_pos(data) - self.bowl_pos(data)
        inside = math.hypot(offset[0], offset[1]) < BOWL_INNER_RADIUS - 0.5 * self.cube_half
        return bool(inside and offset[2] < BOWL_WALL_HEIGHT)

    def score(self, data: mujoco.MjData) -> StepScore:
        reach, grasped, touched = self.grasp_terms(data)
        cube, bowl = self.cube_pos(data), self.bowl_pos(data)
        above_rim = min(max((cube[2] - TABLE_TOP) / (BOWL_WALL_HEIGHT + self.carry_height), 0.0), 1.0)
        closeness = 1.0 - math.tanh(5.0 * math.hypot(cube[0] - bowl[0], cube[1] - bowl[1]))
        in_bowl = self.in_bowl(data)
        resting = math.hypot(*data.qvel[self.cube_qvel][:3]) < self.rest_speed
        success = in_bowl and not touched and resting
        terms = {
            "reach": reach if not in_bowl else 1.0,
            "grasp": float(grasped or in_bowl),
            "carry": float(closeness * (above_rim if grasped else 0.0) if not in_bowl else 1.0),
            "in_bowl": float(in_bowl),
            "released": float(in_bowl and not touched),
        }
        return StepScore(terms, success, failed=self.fell_off_table(data))
