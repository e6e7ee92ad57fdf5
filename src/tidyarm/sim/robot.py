"""The SO-101 arm: joint names, the bundled model file and the home pose. One source of truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ASSETS = Path(__file__).parent / "assets"
ARM_XML = ASSETS / "so101.xml"

# Joint (and actuator) names as LeRobot's so101_follower reports them, in bus order (servo IDs 1-6).
JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
ARM_JOINTS = JOINT_NAMES[:5]
TOOL_SITE = "tool"
ARM_SITES = (TOOL_SITE, "fixed_jaw_tip", "moving_jaw_tip")
JAW_PADS = ("fixed_jaw", "moving_jaw")  # the geoms that hold an object
WRIST_CAMERA = "wrist"

# Gripper joint targets (rad): a little past closed so the servo squeezes, and a wide-open jaw
# (about 6.5 cm between the tips, enough for a 3 cm cube at any yaw).
GRIPPER_CLOSED = -0.17
GRIPPER_OPEN = 0.70

# Home pose (rad): tool point 10 cm above the table and 20 cm in front of the base, fingers
# within 5 degrees of straight down, jaw open. Found with ArmKinematics.solve_ik.
HOME_QPOS = np.array([0.0, -0.47, 0.30, 1.65, 0.0, GRIPPER_OPEN])
