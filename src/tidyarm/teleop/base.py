"""The Teleop protocol: a device polled once per control step for an end-effector action and an event.

Actions are the env's `ee` mode: (dx, dy, dz, d_roll, gripper) in [-1, 1], gripper -1 closed .. +1 open.
Events steer the recording session: keep the episode (save it now), discard it (next seed), redo it
(same seed again), or stop recording (finished episodes stay saved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np

SOURCES = ("keyboard", "gamepad")
INSTALL_HINT = "pip install 'tidyarm[teleop]'"


class Event(Enum):
    KEEP = "keep"
    DISCARD = "discard"
    REDO = "redo"
    STOP = "stop"


class TeleopUnavailable(RuntimeError):
    """The device or the package it needs is missing; the message says what to install or connect."""


@dataclass
class TeleopCommand:
    action: np.ndarray = field(default_factory=lambda: np.array([0, 0, 0, 0, 1], dtype=np.float32))
    """End-effector action (dx, dy, dz, d_roll, gripper) in [-1, 1]."""
    event: Event | None = None
    """A session event triggered since the last poll, if any."""


class Teleop(Protocol):
    """A device polled once per control step. Devices that act from the simulator itself (the scripted
    one) may also define attach(env); the recording session calls it with the env being recorded."""

    help: str
    """One line per control, shown when recording starts."""

    def connect(self) -> None: ...

    def reset(self) -> None:
        """A new episode begins (e.g. the jaw starts open again)."""

    def read(self, observation=None) -> TeleopCommand:
        """The current command; never blocks."""

    def disconnect(self) -> None: ...


def make_teleop(source: str) -> Teleop:
    """A connected keyboard or gamepad; TeleopUnavailable (naming the extra to install) when it cannot be."""
    if source == "keyboard":
        from tidyarm.teleop.keyboard import KeyboardTeleop

        device = KeyboardTeleop()
    elif source == "gamepad":
        from tidyarm.teleop.gamepad import GamepadTeleop

        device = GamepadTeleop()
    else:
        raise ValueError(f"unknown teleop source {source!r}; valid: {list(SOURCES)}")
    device.connect()
    return device
