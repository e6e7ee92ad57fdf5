"""Scripted experts: privileged simulator state + inverse kinematics.

They are the demonstration source and, later, the intervention oracle, so each decides from the
current state (plus a short grasp timer) and can take over at any moment of an episode. An expert
plans a tool-point waypoint, a wrist roll and a jaw command; `to_action` turns that plan into an
action for whichever action mode the env uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tidyarm.sim.control import EndEffectorControl
from tidyarm.sim.env import So101Env
from tidyarm.sim.robot import GRIPPER_CLOSED, GRIPPER_OPEN
from tidyarm.sim.scene import BOWL_WALL_HEIGHT, TABLE_TOP


@dataclass
class Plan:
    tool: np.ndarray  # desired tool-point position (m, world)
    roll: float | None = None  # desired wrist_roll joint angle (rad); None keeps the current command
    gripper: float = 1.0  # jaw command: -1 closed .. +1 open


class Expert:
    """Base: turns a Plan into an action for the env's action mode."""

    def __init__(self, env: So101Env):
        self.env = env
        self.reset()

    def reset(self) -> None:
        pass

    def plan(self) -> Plan:
        raise NotImplementedError

    def __call__(self, observation=None) -> np.ndarray:
        return self.to_action(self.plan())

    def to_action(self, plan: Plan) -> np.ndarray:
        env, control = self.env, self.env.control
        # Steer the commanded targets, not the measured pose, so action latency cannot cause overshoot.
        roll_change = 0.0 if plan.roll is None else plan.roll - control.target[4]
        if isinstance(control, EndEffectorControl):
            move = (plan.tool - control.ee_target) / control.ee_step
            roll = roll_change / control.roll_step
            return np.clip([*move, roll, plan.gripper], -1.0, 1.0).astype(np.float32)
        # Joint modes: walk the commanded tool point toward the plan at the ee controller's speed and
        # solve IK from the current command, so the arm neither lunges nor jumps to another IK branch.
        target = control.target.copy()
        target[4] += roll_change
        commanded = env.kin.forward(target)[0]
        step = plan.tool - commanded
        step_limit = EndEffectorControl.default_step
        step *= min(1.0, step_limit / (np.linalg.norm(step) + 1e-9))
        target = env.kin.solve_ik(target, commanded + step, iterations=3)
        low, high = env.kin.joint_low, env.kin.joint_high
        if control.delta:
            action = (target - control.target) / control.joint_step
            action[:5] /= max(1.0, np.abs(action[:5]).max())  # scale, not clip, to keep the path straight
            action[5] = plan.gripper
        else:
            action = 2.0 * (target - low) / (high - low) - 1.0
            jaw = GRIPPER_CLOSED if plan.gripper < 0 else GRIPPER_OPEN
            action[5] = 2.0 * (jaw - low[5]) / (high[5] - low[5]) - 1.0
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # -- state helpers ------------------------------------------------------------------------------
    def tool(self) -> np.ndarray:
        return self.env.data.site_xpos[self.env.kin.site_id].copy()

    def jaw_yaw(self) -> float:
        """World yaw of the jaw's closing direction (the gripper's x axis)."""
        x_axis = self.env.data.site_xmat[self.env.kin.site_id].reshape(3, 3)[:, 0]
        return float(np.arctan2(x_axis[1], x_axis[0]))


class ReachExpert(Expert):
    def plan(self) -> Plan:
        return Plan(self.env.task.target(self.env.data))


class PickExpert(Expert):
    """Approach above the cube, align the jaw with a cube face, descend, close, lift (and place)."""

    hover = 0.06  # m above the grasp point while lining up
    close_steps = 3  # control steps to squeeze before judging the grasp
    lift_to = 0.09  # m: tool height while holding the cube up

    def reset(self) -> None:
        self.closing = 0  # steps spent closing on the cube; 0 when not closing
        self.hold_point = np.zeros(3)  # tool point where the current grasp began
        self.descending = False
        self.released = False

    def cube_yaw_error(self) -> float:
        """Roll change that lines the jaw up with the nearest cube face (cube symmetric every 90 deg)."""
        cube_yaw = self.env.task.cube_yaw(self.env.data)
        return float((cube_yaw - self.jaw_yaw() + np.pi / 4) % (np.pi / 2) - np.pi / 4)

    def roll_joint(self) -> float:
        return float(self.env.data.qpos[self.env.kin.qpos_adr[4]])

    def plan(self) -> Plan:
        task, data = self.env.task, self.env.data
        cube, tool = task.cube_pos(data), self.tool()
        _, grasped, _ = task.grasp_terms(data)
        if grasped and self.closing >= self.close_steps:
            return self.holding_plan(cube, self.hold_point)
        if self.closing:
            self.closing = self.closing + 1 if self.closing < 2 * self.close_steps else 0  # give up, retry
            return Plan(self.hold_point, gripper=-1.0)
        grasp_point = self.grasp_point(cube)
        xy_error = np.linalg.norm((grasp_point - tool)[:2])
        roll_error = self.cube_yaw_error()
        # Hysteresis: start descending when lined up within 8 mm, abandon only beyond 2 cm, so
        # tracking jitter (worse with action latency) does not make the arm bob up and down.
        limit = 0.02 if self.descending else 0.008
        self.descending = xy_error < limit and abs(roll_error) < 0.15
        if self.descending and xy_error < 0.006 and abs(tool[2] - grasp_point[2]) < 0.008:
            self.closing, self.hold_point = 1, grasp_point  # hold still where the grasp began
            return Plan(grasp_point, gripper=-1.0)
        height = 0.0 if self.descending else self.hover
        return Plan(grasp_point + [0, 0, height], roll=self.roll_joint() + roll_error, gripper=1.0)

    def grasp_point(self, cube: np.ndarray) -> np.ndarray:
        """Where the tool point goes to grasp: the SO-101's jaws are lopsided (the fixed jaw sits 9 mm from
        the tool point, the open moving jaw 6 cm), so the fixed jaw is placed 3 mm clear of the near face
        and closing the moving jaw presses the cube against it."""
        jaw_axis = self.env.data.site_xmat[self.env.kin.site_id].reshape(3, 3)[:, 0].copy()
        jaw_axis[2] = 0.0
        jaw_axis /= np.linalg.norm(jaw_axis) + 1e-9
        fixed_jaw_gap = 0.009  # m from the tool point to the fixed jaw's inner face
        return cube - (self.env.task.cube_half + 0.003 - fixed_jaw_gap) * jaw_axis - [0, 0, 0.003]

    def holding_plan(self, cube: np.ndarray, grasp_point: np.ndarray) -> Plan:
        return Plan(np.array([grasp_point[0], grasp_point[1], TABLE_TOP + self.lift_to]), gripper=-1.0)


class PlaceExpert(PickExpert):
    """Pick, carry above the bowl, lower to just over the rim, let go, back off."""

    carry_over_rim = 0.045  # m between the rim and the tool point while carrying

    def plan(self) -> Plan:
        task, data = self.env.task, self.env.data
        if task.in_bowl(data) and (self.released or not task.grasp_terms(data)[1]):
            self.released = True
            tool = self.tool()
            return Plan(np.array([tool[0], tool[1], TABLE_TOP + 0.12]), gripper=1.0)
        self.released = False
        return super().plan()

    def holding_plan(self, cube: np.ndarray, grasp_point: np.ndarray) -> Plan:
        tool = self.tool()
        bowl = self.env.task.bowl_pos(self.env.data)
        carry_z = TABLE_TOP + BOWL_WALL_HEIGHT + self.carry_over_rim
        if tool[2] < carry_z - 0.02 and np.linalg.norm((bowl - tool)[:2]) > 0.02:
            return Plan(np.array([tool[0], tool[1], carry_z]), gripper=-1.0)  # lift clear of the rim first
        above_bowl = np.array([bowl[0], bowl[1], carry_z])
        over_bowl = np.linalg.norm((bowl - tool)[:2]) < 0.012
        return Plan(above_bowl, gripper=1.0 if over_bowl else -1.0)


EXPERTS: dict[str, type[Expert]] = {"reach": ReachExpert, "lift": PickExpert, "place": PlaceExpert}


def make_expert(env) -> Expert:
    """The scripted expert for an env's task (accepts wrapped envs)."""
    env = env.unwrapped
    return EXPERTS[env.task_name](env)
