"""Action modes: map a normalized action in [-1, 1] to position-servo targets (MuJoCo ctrl).

- `joint` (absolute): each action component is a joint target scaled over the joint's range.
- `joint` (delta): each component moves the previous target by up to `joint_step` rad.
- `ee`: (dx, dy, dz, d_roll, gripper). The tool-point target moves by up to `ee_step` m per step inside
  a workspace box, inverse kinematics turns it into joint targets, the wrist roll moves directly, and
  the gripper component is an absolute jaw target from closed (-1) to open (+1).

Inverse kinematics is damped least squares on MuJoCo's site Jacobian, run on a scratch MjData so the
simulation is never touched. It asks for the fingers to point down, with a small weight, so the arm
tilts the gripper when a vertical one cannot reach (e.g. high above the table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import gymnasium as gym
import mujoco
import numpy as np

from tidyarm.sim.robot import ARM_JOINTS, GRIPPER_CLOSED, GRIPPER_OPEN, JOINT_NAMES, TOOL_SITE

ACTION_MODES = ("joint", "joint_delta", "ee")
IK_JOINTS = ARM_JOINTS[:4]  # pan, lift, elbow, wrist_flex place the tool point; roll is commanded directly


@dataclass(frozen=True)
class Workspace:
    """Box (m, world frame) the end-effector target is kept in, plus a radial band about the pan axis."""

    low: np.ndarray = field(default_factory=lambda: np.array([0.0, -0.35, 0.01]))
    high: np.ndarray = field(default_factory=lambda: np.array([0.45, 0.35, 0.30]))
    min_radius: float = 0.10
    max_radius: float = 0.36

    def clip(self, point: np.ndarray, pan_axis_xy: np.ndarray) -> np.ndarray:
        point = np.minimum(np.maximum(point, self.low), self.high)
        offset = point[:2] - pan_axis_xy
        radius = math.hypot(offset[0], offset[1])
        if radius > 1e-9:
            point[:2] = pan_axis_xy + offset * min(max(radius, self.min_radius), self.max_radius) / radius
        return point


class ArmKinematics:
    """Ids resolved once, forward kinematics and IK for the tool point."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self.scratch = mujoco.MjData(model)
        joint_ids = [model.joint(name).id for name in JOINT_NAMES]
        self.qpos_adr = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self.dof_adr = np.array([model.jnt_dofadr[j] for j in joint_ids])
        self.joint_low = model.jnt_range[joint_ids, 0].copy()
        self.joint_high = model.jnt_range[joint_ids, 1].copy()
        self.actuator_ids = np.array([_actuator_for(model, name) for name in JOINT_NAMES])
        self.site_id = model.site(TOOL_SITE).id
        self.pan_axis_xy = model.body_pos[int(model.joint("shoulder_pan").bodyid[0]), :2].copy()
        self._jacp = np.zeros((3, model.nv))
        self._damping = 1e-4 * np.eye(3)
        self.down_pitch = self._finger_down_pitch()

    def _finger_down_pitch(self) -> float:
        """lift + elbow + wrist_flex (rad) at which the fingers point straight down, read off the model."""
        _, rotation = self.forward(np.zeros(len(JOINT_NAMES)))
        finger = -rotation[:, 2]  # at q = 0 the fingers point forward, nearly level
        # +lift/+elbow/+wrist_flex pitch the fingers forward and down about +y.
        return float(np.pi / 2 + np.arctan2(finger[2], finger[0]))

    def tool_pose(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """Tool point position (3,) and orientation matrix (3, 3) from an already-forwarded MjData."""
        return data.site_xpos[self.site_id].copy(), data.site_xmat[self.site_id].reshape(3, 3).copy()

    def forward(self, joint_qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool pose for the six joint positions, computed on the scratch data."""
        self.scratch.qpos[self.qpos_adr] = joint_qpos
        mujoco.mj_kinematics(self.model, self.scratch)
        return self.tool_pose(self.scratch)

    def solve_ik(self, joint_qpos: np.ndarray, target: np.ndarray, iterations: int = 1) -> np.ndarray:
        """Joint positions (6,) near `joint_qpos` that put the tool point at `target`, fingers down.

        lift, elbow and wrist_flex turn about parallel axes, so the fingers point straight down when
        their angles sum to `down_pitch`. The wrist is slaved to that rule (clipped to its range, so the
        gripper tilts where a vertical one cannot reach), which leaves a square 3x3 Newton problem in
        pan, lift and elbow: fast, exact, and free of null-space tuning. Each control step moves the
        target a little and warm-starts from the last solution, so one iteration per step suffices
        (the residual is corrected on the next step, as the end-effector target is absolute).
        """
        q = joint_qpos.copy()
        cols = self.dof_adr[:4]
        for _ in range(iterations):
            q[3] = self._down_wrist(q)
            self.scratch.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(self.model, self.scratch)
            mujoco.mj_comPos(self.model, self.scratch)
            mujoco.mj_jacSite(self.model, self.scratch, self._jacp, None, self.site_id)
            jac = self._jacp[:, cols]
            wrist_free = self.joint_low[3] < q[3] < self.joint_high[3]
            # Chain rule: d(wrist)/d(lift) = d(wrist)/d(elbow) = -1 while the wrist is inside its range.
            jac3 = jac[:, :3].copy()
            if wrist_free:
                jac3[:, 1:] -= jac[:, 3:4]
            error = target - self.scratch.site_xpos[self.site_id]
            # Damped normal equations (J^T J + lambda I) step = J^T error, solved by MuJoCo's Cholesky:
            # same answer as np.linalg.solve, a fraction of its call overhead on a 3x3 system.
            normal = jac3.T @ jac3 + self._damping
            mujoco.mju_cholFactor(normal, 0.0)
            step = np.empty(3)
            mujoco.mju_cholSolve(step, normal, jac3.T @ error)
            q[:3] = np.minimum(np.maximum(q[:3] + step, self.joint_low[:3]), self.joint_high[:3])
        q[3] = self._down_wrist(q)
        return q

    def _down_wrist(self, q: np.ndarray) -> float:
        """wrist_flex angle that points the fingers down for this lift and elbow, clipped to its range."""
        return min(max(self.down_pitch - q[1] - q[2], self.joint_low[3]), self.joint_high[3])


def _actuator_for(model: mujoco.MjModel, joint_name: str) -> int:
    joint_id = model.joint(joint_name).id
    for actuator_id in range(model.nu):
        if model.actuator_trnid[actuator_id, 0] == joint_id:
            return actuator_id
    raise ValueError(f"no actuator drives joint '{joint_name}'")


GRIPPER_GAIN = 2.5  # the jaw command saturates at |a| >= 0.4


def gripper_target(command: float) -> float:
    """Map a gripper command in [-1, 1] (closed .. open) to a jaw joint target.

    The command is amplified and clipped, so a policy reaches fully closed or fully open without
    having to drive its output to the edge of [-1, 1]: a fresh policy (outputs near 0) that flips the
    sign of this component opens or closes the jaw for real, which makes grasps easy to discover.
    """
    command = min(1.0, max(-1.0, GRIPPER_GAIN * command))
    return GRIPPER_CLOSED + (command + 1.0) / 2.0 * (GRIPPER_OPEN - GRIPPER_CLOSED)


class JointControl:
    """Absolute or delta joint targets; the gripper behaves as in `ee` mode when delta."""

    def __init__(self, kin: ArmKinematics, delta: bool = False, joint_step: float = 0.1):
        self.kin, self.delta, self.joint_step = kin, delta, joint_step
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(len(JOINT_NAMES),), dtype=np.float32)
        self.target = np.zeros(len(JOINT_NAMES))

    def reset(self, joint_qpos: np.ndarray) -> None:
        self.target = joint_qpos.copy()

    def targets(self, action: np.ndarray, data: mujoco.MjData) -> np.ndarray:
        low, high = self.kin.joint_low, self.kin.joint_high
        if self.delta:
            self.target[:5] = np.clip(self.target[:5] + action[:5] * self.joint_step, low[:5], high[:5])
            self.target[5] = gripper_target(action[5])
        else:
            self.target = low + (action + 1.0) / 2.0 * (high - low)
        return self.target


class EndEffectorControl:
    """(dx, dy, dz, d_roll, gripper) -> joint targets through IK, inside a workspace box."""

    default_step = 0.025  # m per control step at full action: 0.25 m/s at 10 Hz

    def __init__(self, kin: ArmKinematics, ee_step: float = default_step, roll_step: float = 0.2,
                 max_lead: float = 0.05, workspace: Workspace = Workspace()):
        self.kin, self.ee_step, self.roll_step = kin, ee_step, roll_step
        self.max_lead, self.workspace = max_lead, workspace
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(5,), dtype=np.float32)
        self.target = np.zeros(len(JOINT_NAMES))
        self.ee_target = np.zeros(3)

    def reset(self, joint_qpos: np.ndarray) -> None:
        self.target = joint_qpos.copy()
        self.ee_target = self.workspace.clip(self.kin.forward(joint_qpos)[0], self.kin.pan_axis_xy)

    def targets(self, action: np.ndarray, data: mujoco.MjData) -> np.ndarray:
        tool = data.site_xpos[self.kin.site_id]
        ee_target = self.ee_target + action[:3] * self.ee_step
        # Never lead the real tool by more than max_lead: a blocked arm must not wind up a large error.
        lead = ee_target - tool
        distance = math.hypot(*lead)
        if distance > self.max_lead:
            ee_target = tool + lead * self.max_lead / distance
        self.ee_target = self.workspace.clip(ee_target, self.kin.pan_axis_xy)
        low, high = self.kin.joint_low, self.kin.joint_high
        self.target[4] = min(max(self.target[4] + action[3] * self.roll_step, low[4]), high[4])
        self.target = self.kin.solve_ik(self.target, self.ee_target)
        self.target[5] = gripper_target(action[4])
        return self.target


def make_control(mode: str, kin: ArmKinematics) -> JointControl | EndEffectorControl:
    if mode in ("joint", "joint_delta"):
        return JointControl(kin, delta=mode == "joint_delta")
    if mode == "ee":
        return EndEffectorControl(kin)
    raise ValueError(f"unknown action mode '{mode}'; valid modes: {list(ACTION_MODES)}")
