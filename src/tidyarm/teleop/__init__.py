"""Teleoperation devices behind one protocol: keyboard (pynput), gamepad (pygame), scripted (tests, demos)."""

from tidyarm.teleop.base import Event, Teleop, TeleopCommand, TeleopUnavailable, make_teleop

__all__ = ["Event", "Teleop", "TeleopCommand", "TeleopUnavailable", "make_teleop"]
