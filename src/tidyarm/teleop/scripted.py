"""A scripted Teleop: the scripted expert at the controls, plus session events at chosen steps.

It exercises exactly the path a keyboard or gamepad takes (tests and demos need no device).
"""

from __future__ import annotations

from collections.abc import Mapping

from tidyarm.sim.experts import make_expert
from tidyarm.teleop.base import Event, TeleopCommand


class ScriptedTeleop:
    help = "scripted: the expert drives; events fire at scripted (episode attempt, step) pairs"

    def __init__(self, events: Mapping[tuple[int, int], Event] | None = None, env=None):
        """events: {(attempt, step): Event}; attempt counts every episode started (redos and discards too).
        env: the env being recorded (or given later through attach, as the recording session does)."""
        self.events = dict(events or {})
        self.expert = None
        self.attempt, self.step = -1, 0
        if env is not None:
            self.attach(env)

    def attach(self, env) -> None:
        """Drive this env: the expert plans from its privileged state."""
        self.expert = make_expert(env)

    def connect(self) -> None:
        pass

    def reset(self) -> None:
        self.attempt, self.step = self.attempt + 1, 0
        self.expert.reset()

    def read(self, observation=None) -> TeleopCommand:
        if self.expert is None:
            raise ValueError("ScriptedTeleop has no env: pass env= or call attach(env) first")
        event = self.events.get((self.attempt, self.step))
        self.step += 1
        return TeleopCommand(self.expert.to_action(self.expert.plan()), event)

    def disconnect(self) -> None:
        pass
