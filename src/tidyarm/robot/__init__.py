"""Robots behind one interface (simulated with a reality gap; real drivers later), one safety layer, deployment."""

from tidyarm.robot.base import Robot, RobotNotConnected, RobotObservation, joint_limits
from tidyarm.robot.gap import GAP_PRESETS, RealityGap
from tidyarm.robot.safety import SafetyConfig, SafetyLayer, UnsafeCommand
from tidyarm.robot.sim_robot import SimRobot, make_robot

__all__ = ["GAP_PRESETS", "RealityGap", "Robot", "RobotNotConnected", "RobotObservation", "SafetyConfig",
           "SafetyLayer", "SimRobot", "UnsafeCommand", "joint_limits", "make_robot"]
