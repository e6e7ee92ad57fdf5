"""Gamepad teleoperation through pygame (SDL's standard controller layout, e.g. Xbox or PS).

  left stick     move in the table plane (x forward, y left)
  right stick    up / down (vertical axis) and wrist roll (horizontal axis)
  right trigger  close the jaw (released: open)
  A / cross      keep the episode now      B / circle  discard it      X / square  redo it (same seed)
  start          stop recording (finished episodes are kept)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tidyarm.teleop.base import INSTALL_HINT, Event, TeleopCommand, TeleopUnavailable


@dataclass(frozen=True)
class GamepadLayout:
    """Axis and button numbers as pygame reports them (SDL game-controller order)."""

    left_x: int = 0
    """Left stick, horizontal."""
    left_y: int = 1
    """Left stick, vertical (pushed forward reads negative)."""
    right_x: int = 3
    """Right stick, horizontal."""
    right_y: int = 4
    """Right stick, vertical."""
    right_trigger: int = 5
    """Right trigger (-1 released .. +1 pressed)."""
    keep: int = 0
    """Button that keeps the episode (A)."""
    discard: int = 1
    """Button that discards it (B)."""
    redo: int = 2
    """Button that records it again on the same seed (X)."""
    stop: int = 7
    """Button that stops recording (start)."""
    deadzone: float = 0.1
    """Stick deflection below this reads as zero."""


class GamepadTeleop:
    help = __doc__.split("\n\n", 1)[1].strip()

    def __init__(self, layout: GamepadLayout = GamepadLayout()):
        try:
            import pygame
        except ImportError as error:
            raise TeleopUnavailable(f"gamepad teleoperation needs pygame: {INSTALL_HINT} ({error})") from error
        self._pygame, self.layout, self._joystick = pygame, layout, None

    def connect(self) -> None:
        pygame = self._pygame
        pygame.init()
        pygame.joystick.init()
        if pygame.joystick.get_count() == 0:
            raise TeleopUnavailable("no gamepad found: pygame sees 0 joysticks; connect one (or use --source keyboard)")
        self._joystick = pygame.joystick.Joystick(0)
        self._joystick.init()

    def reset(self) -> None:
        self._pygame.event.clear()

    def _axis(self, index: int) -> float:
        value = self._joystick.get_axis(index) if index < self._joystick.get_numaxes() else 0.0
        return 0.0 if abs(value) < self.layout.deadzone else float(value)

    def read(self, observation=None) -> TeleopCommand:
        layout, event = self.layout, None
        buttons = {layout.keep: Event.KEEP, layout.discard: Event.DISCARD, layout.redo: Event.REDO,
                   layout.stop: Event.STOP}
        for pygame_event in self._pygame.event.get():
            if pygame_event.type == self._pygame.JOYBUTTONDOWN and pygame_event.button in buttons:
                event = buttons[pygame_event.button]
        closing = self._axis(layout.right_trigger) > 0.0
        action = np.array([-self._axis(layout.left_y), -self._axis(layout.left_x), -self._axis(layout.right_y),
                           self._axis(layout.right_x), -1.0 if closing else 1.0], dtype=np.float32)
        return TeleopCommand(np.clip(action, -1.0, 1.0), event)

    def disconnect(self) -> None:
        if self._joystick is not None:
            self._pygame.joystick.quit()
            self._joystick = None
