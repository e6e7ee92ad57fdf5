"""What every task shares: object placement over the workspace, contact queries, reward bookkeeping.

A task owns the objects it needs, places them at reset, adds its features to the state observation
and scores a step as named reward terms plus a success predicate that is kept apart from the reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from tidyarm.sim.control import ArmKinematics
from tidyarm.sim.robot import JAW_PADS
from tidyarm.sim.scene import TABLE_TOP


@dataclass
class StepScore:
    terms: dict[str, float]  # each reward term before weighting
    success: bool  # the task's own predicate, independent of the reward
    failed: bool = False  # a real terminal state (e.g. the object fell off the table)


class Task:
    """Base class. Subclasses set `name`, `objects`, `max_episode_steps`, `default_weights`."""

    name: str = ""
    objects: tuple[str, ...] = ()
    max_episode_steps: int = 100
    default_weights: dict[str, float] = {}

    def __init__(self, model: mujoco.MjModel, kin: ArmKinematics, control_hz: float,
                 weights: dict[str, float] | None = None):
        self.model, self.kin, self.control_hz = model, kin, control_hz
        self.weights = dict(self.default_weights)
        unknown = set(weights or {}) - set(self.weights)
        if unknown:
            raise ValueError(f"unknown reward term(s) {sorted(unknown)} for task '{self.name}'; "
                             f"valid terms: {sorted(self.weights)}")
        self.weights.update(weights or {})
        self.pad_geoms = tuple(model.geom(name).id for name in JAW_PADS)
        self.gripper_bodies = {model.body("gripper").id, model.body("moving_jaw").id}
        self.jaw_tip_sites = (model.site("fixed_jaw_tip").id, model.site("moving_jaw_tip").id)

    # -- to override ---------------------------------------------------------------------------
    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def features(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Named task features for the state observation (object and goal poses)."""
        raise NotImplementedError

    def score(self, data: mujoco.MjData) -> StepScore:
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------------
    def reward(self, terms: dict[str, float]) -> float:
        return float(sum(self.weights[name] * value for name, value in terms.items()))

    def sample_on_table(self, rng: np.random.Generator, radius: tuple[float, float] = (0.15, 0.29),
                        angle: float = 0.8) -> np.ndarray:
        """A point (x, y) in the sector in front of the pan axis that top-down grasps reach."""
        r = rng.uniform(*radius)
        theta = rng.uniform(-angle, angle)
        return self.kin.pan_axis_xy + r * np.array([np.cos(theta), np.sin(theta)])

    def grasp_center(self, data: mujoco.MjData) -> np.ndarray:
        """Midpoint between the jaw tips' inner faces: where an object sits before the jaw closes on it.

        The SO-101's jaws are lopsided (the moving jaw swings away from a fixed one), so this point moves
        with the opening; it equals the tool point when the jaw is closed.
        """
        fixed, moving = self.jaw_tip_sites
        return 0.5 * (data.site_xpos[fixed] + data.site_xpos[moving])

    def between_jaws(self, data: mujoco.MjData, point: np.ndarray, tolerance: float = 0.012) -> bool:
        """Whether `point` lies between the jaw tips: closing the jaw now would catch an object there."""
        fixed, moving = (data.site_xpos[site] for site in self.jaw_tip_sites)
        gap = moving - fixed
        along = float(np.dot(point - fixed, gap) / (np.dot(gap, gap) + 1e-12))
        off_axis = point - fixed - along * gap
        return 0.0 < along < 1.0 and float(off_axis @ off_axis) < tolerance**2

    def touching(self, data: mujoco.MjData, geom_id: int) -> tuple[bool, bool, bool]:
        """(fixed pad touches, moving pad touches, any gripper geom touches) the given geom."""
        contacts = data.contact
        others = np.concatenate([contacts.geom2[contacts.geom1 == geom_id], contacts.geom1[contacts.geom2 == geom_id]])
        if not len(others):
            return False, False, False
        fixed, moving = self.pad_geoms[0] in others, self.pad_geoms[1] in others
        return fixed, moving, not self.gripper_bodies.isdisjoint(self.model.geom_bodyid[others].tolist())


class CubeTask(Task):
    """Shared by tasks that start with the cube on the table."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cube_body = self.model.body("cube").id
        self.cube_geom = self.model.geom("cube").id
        joint = self.model.joint("cube")
        self.cube_qpos = slice(joint.qposadr[0], joint.qposadr[0] + 7)
        self.cube_qvel = slice(joint.dofadr[0], joint.dofadr[0] + 6)

    @property
    def cube_half(self) -> float:
        return float(self.model.geom_size[self.cube_geom, 0])

    def place_cube(self, data: mujoco.MjData, xy: np.ndarray, rng: np.random.Generator) -> None:
        yaw = rng.uniform(-np.pi / 4, np.pi / 4)  # a cube looks the same every quarter turn
        data.qpos[self.cube_qpos] = [*xy, TABLE_TOP + self.cube_half, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        data.qvel[self.cube_qvel] = 0.0

    def cube_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.xpos[self.cube_body].copy()

    def cube_features(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        quat = data.xquat[self.cube_body].copy()
        quat *= np.sign(quat[0]) or 1.0  # q and -q are the same rotation
        # Yaw of the cube relative to the jaw's closing direction, as sin/cos of 4x the angle: a cube looks
        # the same every quarter turn, so this is what lining the jaw up with a face depends on.
        jaw = data.site_xmat[self.kin.site_id].reshape(3, 3)[:, 0]
        relative_yaw = 4.0 * (self.cube_yaw(data) - np.arctan2(jaw[1], jaw[0]))
        return {"cube_pos": self.cube_pos(data), "cube_quat": quat,
                "cube_to_grasp": self.cube_pos(data) - self.grasp_center(data),
                "cube_yaw_to_jaw": np.array([np.sin(relative_yaw), np.cos(relative_yaw)])}

    def cube_yaw(self, data: mujoco.MjData) -> float:
        """Yaw (rad) of the cube about the vertical (exact while it rests flat)."""
        quat = data.xquat[self.cube_body]
        return float(2.0 * np.arctan2(quat[3], quat[0]))

    def grasp_terms(self, data: mujoco.MjData) -> tuple[float, bool, bool]:
        """(reach in [0, 1], grasped: both pads on the cube, gripper touches the cube at all).

        Reach pays 0.5 for closeness of the cube to the open jaw's centre and 0.5 for having it between the
        jaw tips, the state from which closing the jaw makes a grasp.
        """
        cube = self.cube_pos(data)
        offset = cube - self.grasp_center(data)
        closeness = 1.0 - np.tanh(5.0 * np.sqrt(offset @ offset))
        fixed, moving, any_contact = self.touching(data, self.cube_geom)
        return 0.5 * closeness + 0.5 * self.between_jaws(data, cube), fixed and moving, any_contact

    def fell_off_table(self, data: mujoco.MjData) -> bool:
        return bool(self.cube_pos(data)[2] < TABLE_TOP - 0.05)
