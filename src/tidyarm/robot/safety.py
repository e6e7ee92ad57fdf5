"""One safety layer shared by every robot: what reaches the servos is always finite, inside the joint limits,
a bounded step from the last command, and the measured position when the commander has gone quiet.

Rules, in the order `filter` applies them:
1. wrong shape: ValueError (a programming error, not a runtime fault);
2. any NaN or inf: the whole command is rejected, never partly sent. With `nonfinite="hold"` (the default)
   the arm holds its measured position and the reject is counted; with `"raise"` a `UnsafeCommand` names
   the joint(s) and the robot is left holding, too;
3. clip to the joint limits (the model's ranges, optionally minus a margin);
4. limit the change per tick against the last command sent (separately for the arm and the gripper);
5. watchdog: when no valid command arrived for `watchdog_timeout` seconds, or the link to the commander
   (policy, HIL actor) is reported lost, the target becomes the measured position. A held arm never keeps
   moving to an old target; the next valid command starts from the held position (and is step-limited).
Every clip, reject and hold is counted in `counts` and logged (debug for clips, warning for rejects/holds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tidyarm.sim.robot import JOINT_NAMES

log = logging.getLogger(__name__)
NONFINITE_MODES = ("hold", "raise")
COUNTERS = ("commands", "rejected_nonfinite", "clipped_limits", "clipped_step", "watchdog_holds", "link_lost_holds",
            "holds")


class UnsafeCommand(ValueError):
    """A command the safety layer refused to send (it was not sent; the arm holds)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Limits applied to every command before it reaches a robot's servos."""

    max_step: float = 0.35
    """Largest change (rad) of an arm joint's target per control tick (0.35 rad = 20 deg, 3.5 rad/s at 10 Hz;
    the STS3215 saturates near 4.9 rad/s)."""
    gripper_max_step: float = 1.0
    """Largest change (rad) of the gripper target per tick (a full open-close swing is about 0.9 rad)."""
    limit_margin: float = 0.0
    """Keep targets this far (rad) inside each joint's calibrated range (0: the range itself; the sim's closed
    gripper target sits 0.005 rad inside it, so a margin above that would clip every grasp)."""
    watchdog_timeout: float = 0.5
    """Seconds without a valid command after which the arm holds its measured position."""
    nonfinite: str = "hold"
    """On a NaN/inf command: 'hold' (count it, hold the measured position) or 'raise' (UnsafeCommand; also holds)."""

    def __post_init__(self) -> None:
        for name in ("max_step", "gripper_max_step", "watchdog_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SafetyConfig.{name} = {getattr(self, name)}: expected a positive number")
        if not 0 <= self.limit_margin < 0.1:
            raise ValueError(f"SafetyConfig.limit_margin = {self.limit_margin}: expected 0 <= margin < 0.1 rad")
        if self.nonfinite not in NONFINITE_MODES:
            raise ValueError(f"SafetyConfig.nonfinite = {self.nonfinite!r}: expected one of {list(NONFINITE_MODES)}")


class SafetyLayer:
    """Stateful filter between a commander and a robot: remembers the last target it let through."""

    def __init__(self, config: SafetyConfig, low: np.ndarray, high: np.ndarray):
        self.config = config
        self.low = np.asarray(low, dtype=np.float64) + config.limit_margin
        self.high = np.asarray(high, dtype=np.float64) - config.limit_margin
        if self.low.shape != (len(JOINT_NAMES),) or np.any(self.low >= self.high):
            raise ValueError(f"joint limits {low} .. {high}: expected {len(JOINT_NAMES)} ranges wider than the margin")
        self.max_step = np.full(len(JOINT_NAMES), config.max_step)
        self.max_step[-1] = config.gripper_max_step
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.last_sent: np.ndarray | None = None
        self.last_valid_time: float | None = None
        self.holding = False

    def reset(self, measured: np.ndarray, now: float) -> np.ndarray:
        """Start (or restart after a reconnect) from the measured position: the first target is a hold."""
        self.last_sent = self._clip(np.asarray(measured, dtype=np.float64))
        self.last_valid_time, self.holding = now, True
        return self.last_sent.copy()

    def filter(self, command, measured: np.ndarray, now: float) -> np.ndarray:
        """The target to send for `command` (joint targets, rad, JOINT_NAMES order)."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (len(JOINT_NAMES),):
            raise ValueError(f"joint command has shape {command.shape}; expected ({len(JOINT_NAMES)},) for joints "
                             f"{list(JOINT_NAMES)}")
        if self.last_sent is None:
            self.reset(measured, now)
        self.counts["commands"] += 1
        bad = ~np.isfinite(command)
        if bad.any():
            names = [JOINT_NAMES[i] for i in np.flatnonzero(bad)]
            self.counts["rejected_nonfinite"] += 1
            held = self.hold(measured, "nonfinite")
            message = f"command {command.tolist()} is not finite at joint(s) {names}; not sent, the arm holds"
            log.warning(message)
            if self.config.nonfinite == "raise":
                raise UnsafeCommand(message)
            return held
        target = self._clip(command)
        if not np.array_equal(target, command):
            self.counts["clipped_limits"] += 1
            log.debug("command %s clipped to the joint limits: %s", command, target)
        step = np.clip(target - self.last_sent, -self.max_step, self.max_step)
        if not np.allclose(step, target - self.last_sent):
            self.counts["clipped_step"] += 1
            log.debug("command %s limited to a step of %s per tick", target, self.max_step)
        self.last_sent = self.last_sent + step
        self.last_valid_time, self.holding = now, False
        return self.last_sent.copy()

    def expired(self, now: float) -> bool:
        """Whether the watchdog fires: no valid command for longer than the timeout (and not already holding)."""
        return (not self.holding and self.last_valid_time is not None
                and now - self.last_valid_time > self.config.watchdog_timeout)

    def hold(self, measured: np.ndarray, reason: str) -> np.ndarray:
        """Make the measured position the target (clipped to the limits); count why."""
        counter = {"watchdog": "watchdog_holds", "link_lost": "link_lost_holds"}.get(reason)
        if counter:
            self.counts[counter] += 1
        self.counts["holds"] += 1
        # A hold someone asked for (disconnect, end of a run) is routine; one the layer forced is worth a warning.
        level = logging.INFO if reason in ("requested", "disconnect", "nonfinite") else logging.WARNING
        log.log(level, "holding the measured position (%s)", reason)
        measured = np.asarray(measured, dtype=np.float64)
        self.last_sent = self._clip(np.where(np.isfinite(measured), measured, self._fallback()))
        self.holding = True
        return self.last_sent.copy()

    def _fallback(self) -> np.ndarray:
        # A joint whose reading is not finite keeps its last target (or the middle of its range at start).
        return self.last_sent if self.last_sent is not None else (self.low + self.high) / 2

    def _clip(self, target: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(target, self.low), self.high)
