"""Scripted experts: privileged simulator state + inverse kinematics.

They are the demonstration source and the intervention oracle, so each decides from the current state
alone (simulator and controller) and can take over at any moment of an episode: an imitator sees what
the expert decided from, and an intervener that steps in mid-episode acts as one that drove from the
start. An expert plans a tool-point waypoint, a wrist roll and a jaw command; `to_action` turns that
plan into an action for whichever action mode the env uses.
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

    def commanded_tool(self) -> np.ndarray:
        """The tool point the controller is steering to (the measured one lags and jitters around it)."""
        control = self.env.control
        if isinstance(control, EndEffectorControl):
            return control.ee_target.copy()
        return self.env.kin.forward(control.target)[0]

    def jaw_yaw(self) -> float:
        """World yaw of the jaw's closing direction (the gripper's x axis)."""
        x_axis = self.env.data.site_xmat[self.env.kin.site_id].reshape(3, 3)[:, 0]
        return float(np.arctan2(x_axis[1], x_axis[0]))


class ReachExpert(Expert):
    def plan(self) -> Plan:
        return Plan(self.env.task.target(self.env.data))


class PickExpert(Expert):
    """Approach above the cube, align the jaw with a cube face, descend, close, lift (and place).

    The descent is a continuous function of the alignment error (an earlier latch, "descending since
    lined up within 8 mm", was state no imitator could see, and under action latency it made the arm bob),
    and a jaw that closed on nothing reopens and tries again."""

    hover = 0.06  # m above the grasp point while lining up
    lift_to = 0.09  # m: tool height while holding the cube up
    missed_jaw = -0.12  # rad: a jaw closed past this holds nothing (on a cube it stops near 0)
    aim_sideways = 0.0  # m: aim this far across the jaw's closing axis from the cube (recorded missed grasps)
    # m between the fixed jaw and the cube's near face as the jaw closes. 3 mm left an imitator's error of
    # a few mm toward the cube no room: with noise of std 5 mm per step on the motion, the expert itself
    # placed 68% (lift 58%); 9 mm gives 90% (lift 78%), and BC on its demos went from 64% to 76%
    # (docs/imitation.md, "A more forgiving grasp"). 12 and 15 mm did worse again.
    fixed_jaw_clearance = 0.009

    def cube_yaw_error(self) -> float:
        """Roll change that lines the jaw up with the nearest cube face (cube symmetric every 90 deg)."""
        cube_yaw = self.env.task.cube_yaw(self.env.data)
        return float((cube_yaw - self.jaw_yaw() + np.pi / 4) % (np.pi / 2) - np.pi / 4)

    def roll_joint(self) -> float:
        return float(self.env.data.qpos[self.env.kin.qpos_adr[4]])

    def jaw(self) -> float:
        return float(self.env.data.qpos[self.env.kin.qpos_adr[5]])

    def plan(self) -> Plan:
        task, data = self.env.task, self.env.data
        cube, tool = task.cube_pos(data) + self.aim_sideways * self.across_jaw(), self.tool()
        if task.grasp_terms(data)[1]:
            return self.holding_plan(self.commanded_tool())
        grasp_point = self.grasp_point(cube)
        xy_error = np.linalg.norm((grasp_point - tool)[:2])
        roll_error = self.cube_yaw_error()
        lined_up = xy_error < 0.01 and abs(roll_error) < 0.15
        if lined_up and tool[2] - grasp_point[2] < 0.01 and self.jaw() > self.missed_jaw:
            return Plan(grasp_point, gripper=-1.0)  # close where the cube is
        # Descend as the jaw lines up: the full hover beyond 3 cm or 0.3 rad off, none within 1 cm and 0.1 rad.
        misalignment = max(_ramp(xy_error, 0.01, 0.03), _ramp(abs(roll_error), 0.1, 0.3))
        if self.jaw() < self.missed_jaw:
            misalignment = 1.0  # closed on nothing: rise while the jaw reopens, then try again
        return Plan(grasp_point + [0, 0, self.hover * misalignment], roll=self.roll_joint() + roll_error,
                    gripper=1.0)

    def grasp_point(self, cube: np.ndarray) -> np.ndarray:
        """Where the tool point goes to grasp: the SO-101's jaws are lopsided (the fixed jaw sits 9 mm from
        the tool point, the open moving jaw 6 cm), so the fixed jaw is placed `fixed_jaw_clearance` clear of
        the near face and closing the moving jaw pushes the cube against it."""
        fixed_jaw_gap = 0.009  # m from the tool point to the fixed jaw's inner face
        offset = self.env.task.cube_half + self.fixed_jaw_clearance - fixed_jaw_gap
        return cube - offset * self.jaw_axis() - [0, 0, 0.003]

    def jaw_axis(self) -> np.ndarray:
        """The horizontal unit vector the jaw closes along."""
        axis = self.env.data.site_xmat[self.env.kin.site_id].reshape(3, 3)[:, 0].copy()
        axis[2] = 0.0
        return axis / (np.linalg.norm(axis) + 1e-9)

    def across_jaw(self) -> np.ndarray:
        """The horizontal unit vector square to the jaw's closing axis."""
        axis = self.jaw_axis()
        return np.array([-axis[1], axis[0], 0.0])

    def holding_plan(self, commanded: np.ndarray) -> Plan:
        """Straight up from the commanded tool point (the measured one jitters, and chasing it shakes the arm)."""
        return Plan(np.array([commanded[0], commanded[1], TABLE_TOP + self.lift_to]), gripper=-1.0)


class PlaceExpert(PickExpert):
    """Pick, carry above the bowl, lower to just over the rim, let go, back off."""

    carry_over_rim = 0.045  # m between the rim and the tool point while carrying

    def plan(self) -> Plan:
        task, data = self.env.task, self.env.data
        if task.in_bowl(data) and not task.grasp_terms(data)[1]:
            tool = self.tool()
            return Plan(np.array([tool[0], tool[1], TABLE_TOP + 0.12]), gripper=1.0)  # let go: back off
        return super().plan()

    def holding_plan(self, commanded: np.ndarray) -> Plan:
        bowl = self.env.task.bowl_pos(self.env.data)
        carry_z = TABLE_TOP + BOWL_WALL_HEIGHT + self.carry_over_rim
        if commanded[2] < carry_z - 0.02 and np.linalg.norm((bowl - commanded)[:2]) > 0.02:
            return Plan(np.array([*commanded[:2], carry_z]), gripper=-1.0)  # lift clear of the rim first
        above_bowl = np.array([bowl[0], bowl[1], carry_z])
        over_bowl = np.linalg.norm((bowl - commanded)[:2]) < 0.012
        return Plan(above_bowl, gripper=1.0 if over_bowl else -1.0)


def _ramp(value: float, low: float, high: float) -> float:
    """0 below `low`, 1 above `high`, linear between."""
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


EXPERTS: dict[str, type[Expert]] = {"reach": ReachExpert, "lift": PickExpert, "place": PlaceExpert}


def make_expert(env) -> Expert:
    """The scripted expert for an env's task (accepts wrapped envs)."""
    env = env.unwrapped
    return EXPERTS[env.task_name](env)
