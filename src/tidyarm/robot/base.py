"""The Robot interface every arm (simulated or real) implements, with the shared safety layer built in.

A driver subclasses `Robot` and implements five small hooks (`_connect`, `_disconnect`, `_read`, `_write`,
`_now`); the public methods own the contract: `send_action` always passes the command through the one
`SafetyLayer` and returns what was really sent, `hold` makes the measured position the target, and the
context manager holds and disconnects on the way out, even after an exception.

Units and order: joint positions in rad in the simulator's convention (each joint's zero is the middle of its
calibrated range, the gripper is the 6th joint, positive opens), in `JOINT_NAMES` order. Camera frames are
uint8 (H, W, 3) RGB by camera name.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache

import mujoco
import numpy as np

from tidyarm.robot.safety import SafetyConfig, SafetyLayer, UnsafeCommand
from tidyarm.sim.robot import ARM_XML, JOINT_NAMES


class RobotNotConnected(RuntimeError):
    """A robot method that needs the link was called before `connect` or after `disconnect`."""


@dataclass
class RobotObservation:
    """One reading of the robot."""

    joint_pos: np.ndarray
    """(6,) measured joint positions (rad), JOINT_NAMES order, gripper last."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Camera frames by name: uint8 (H, W, 3) RGB."""
    timestamp: float = 0.0
    """Seconds on the robot's clock when the joints were read."""
    joint_vel: np.ndarray | None = None
    """(6,) joint velocities (rad/s) when the hardware reports them, else None."""


@cache
def joint_limits() -> tuple[np.ndarray, np.ndarray]:
    """(low, high) joint ranges (rad) from the arm model file sim/robot.py names: the one source of truth."""
    model = mujoco.MjModel.from_xml_path(str(ARM_XML))
    ids = [model.joint(name).id for name in JOINT_NAMES]
    low, high = model.jnt_range[ids, 0].copy(), model.jnt_range[ids, 1].copy()
    low.flags.writeable = high.flags.writeable = False
    return low, high


class Robot(ABC):
    """Base class: connect / get_observation / send_action / disconnect, a context manager, one safety layer."""

    joint_names: tuple[str, ...] = JOINT_NAMES
    cameras: tuple[str, ...] = ()
    control_hz: float = 10.0

    def __init__(self, safety: SafetyConfig | None = None):
        low, high = joint_limits()
        self.safety = SafetyLayer(safety or SafetyConfig(), low, high)
        self._connected = False
        # send_action, hold and the watchdog may run on different threads (a driver's watchdog thread).
        self._lock = threading.RLock()

    # -- public API ------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            raise RuntimeError(f"{type(self).__name__} is already connected")
        self._connect()
        self._connected = True
        # The first target is where the arm is: connecting never moves it.
        self._write(self.safety.reset(self._read(images=False).joint_pos, self._now()))

    def disconnect(self) -> None:
        if not self._connected:
            return
        try:
            self.hold("disconnect")
        finally:
            self._connected = False
            self._disconnect()

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.disconnect()

    def get_observation(self) -> RobotObservation:
        self._require_connection("get_observation")
        return self._read(images=True)

    def send_action(self, joint_targets) -> np.ndarray:
        """Send (6,) joint targets (rad) through the safety layer; returns the targets really sent."""
        self._require_connection("send_action")
        with self._lock:
            measured = self._read(images=False).joint_pos
            try:
                sent = self.safety.filter(joint_targets, measured, self._now())
            except UnsafeCommand:
                self._write(self.safety.last_sent)  # the layer made the measured position the target: send it
                raise
            self._write(sent)
        return sent

    def hold(self, reason: str = "requested") -> np.ndarray:
        """Stop where the arm is: the measured position becomes the target. Returns it."""
        self._require_connection("hold")
        with self._lock:
            target = self.safety.hold(self._read(images=False).joint_pos, reason)
            self._write(target)
        return target

    def link_lost(self) -> np.ndarray:
        """Called by whatever carries commands (deploy loop, HIL actor) when its commander is gone: hold now."""
        return self.hold("link_lost")

    def check_watchdog(self) -> bool:
        """Hold if no valid command came within the timeout; True when it fired. Drivers call it every tick."""
        with self._lock:
            if self._connected and self.safety.expired(self._now()):
                self.hold("watchdog")
                return True
        return False

    @property
    def last_sent(self) -> np.ndarray | None:
        """The last target that reached the servos (after the safety layer)."""
        return None if self.safety.last_sent is None else self.safety.last_sent.copy()

    def _require_connection(self, method: str) -> None:
        if not self._connected:
            raise RobotNotConnected(f"{type(self).__name__}.{method}: the robot is not connected; call connect() "
                                    "or use it as a context manager")

    # -- driver hooks ----------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Open the link (bus, simulator)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the link. Called after the final hold."""

    @abstractmethod
    def _read(self, images: bool) -> RobotObservation:
        """Read the joints (and the cameras when `images`)."""

    @abstractmethod
    def _write(self, joint_targets: np.ndarray) -> None:
        """Write already-safe targets to the servos."""

    @abstractmethod
    def _now(self) -> float:
        """Seconds on the robot's clock (the watchdog's time base)."""
