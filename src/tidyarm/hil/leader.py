"""An SO-101 leader arm as the HIL-SERL intervener: move the leader and the follower's tool point follows.

The leader's servos are read with torque off (a person moves it by hand) through the same bus and
calibration code as the follower driver (robot/so101.py). Each step its joint angles become an `ee` action
that steers the follower's tool-point target toward the leader's tool point (forward kinematics of the
leader's joints), its wrist roll toward the leader's, and its jaw to the leader's jaw opening. Moving the
leader by more than `engage` rad on any joint since the last step takes over; `linger_steps` steps after
it comes to rest the policy gets the arm back. Tested through a fake bus only (no leader arm here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tidyarm.robot.so101 import FeetechBus, JointMapping, ServoBus, load_calibration
from tidyarm.sim.robot import GRIPPER_CLOSED, GRIPPER_OPEN


class LeaderArmIntervener:
    def __init__(self, bus: ServoBus, calibration: dict, engage: float = 0.02, linger_steps: int = 5):
        self.bus, self.mapping = bus, JointMapping(calibration)
        self.engage, self.linger_steps = engage, linger_steps
        self.bus.open()
        self.bus.set_torque(self.mapping.ids, False)  # moved by hand
        self.env, self.previous, self.quiet = None, None, linger_steps

    def read(self) -> np.ndarray:
        raw = self.bus.read_positions(self.mapping.ids)
        return self.mapping.to_joints(np.array([raw[motor] for motor in self.mapping.ids], dtype=np.float64))

    def reset(self, env) -> None:
        self.env = env.unwrapped
        if self.env.action_mode != "ee":
            raise ValueError(f"the leader arm steers 'ee' actions; the env uses {self.env.action_mode!r}")
        self.previous, self.quiet = self.read(), self.linger_steps

    def follow(self, leader: np.ndarray) -> np.ndarray:
        """The ee action that moves the follower's targets toward the leader's pose."""
        control = self.env.control
        tool = self.env.kin.forward(leader)[0]
        move = (tool - control.ee_target) / control.ee_step
        roll = (leader[4] - control.target[4]) / control.roll_step
        opening = (leader[5] - GRIPPER_CLOSED) / (GRIPPER_OPEN - GRIPPER_CLOSED)  # 0 closed .. 1 open
        return np.clip([*move, roll, 2.0 * opening - 1.0], -1.0, 1.0).astype(np.float32)

    def __call__(self, obs, policy_action):
        leader = self.read()
        moved = np.abs(leader - self.previous).max() > self.engage
        self.previous = leader
        self.quiet = 0 if moved else self.quiet + 1
        return self.follow(leader) if self.quiet < self.linger_steps else None

    def demonstrate(self, obs):
        return self.follow(self.read())


def connect_leader_arm(port: str = "/dev/ttyACM1", calibration: Path | None = None) -> LeaderArmIntervener:
    """The leader arm on a Feetech bus, with LeRobot's so101_leader calibration JSON."""
    if calibration is None:
        raise ValueError("the leader arm needs its calibration: LeRobot's so101_leader JSON (leader_calibration)")
    return LeaderArmIntervener(FeetechBus(port), load_calibration(calibration))
