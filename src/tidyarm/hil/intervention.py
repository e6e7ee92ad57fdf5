"""Interventions: who takes the arm from the policy when it is stuck, and gives it back.

An intervener is polled once per step with the observation and the policy's action; it returns an action to
execute instead, or None to let the policy act. `demonstrate(obs)` drives outright (the demonstrations that
seed the offline buffer). Actions are the env's `ee` mode, (dx, dy, dz, d_roll, gripper) in [-1, 1].

- `ScriptedIntervener`: the task's scripted expert (simulator state) standing in for a person watching the
  arm; it takes over when the arm is stuck, pushing the cube away, or late, and hands back after a while.
- `TeleopIntervener`: a keyboard or gamepad (tidyarm.teleop); touching a movement control takes over, and
  control returns to the policy once the person has let go for `linger_steps` steps.
- `LeaderArmIntervener`: an SO-101 leader arm; moving it takes over, and the follower's tool point and jaw
  follow the leader's.

Every intervention passes `checked_action` before it reaches the robot: a NaN or inf is rejected (the
policy keeps the arm that step and the rejection is counted), a value outside [-1, 1] is clipped.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

INTERVENERS = ("scripted", "keyboard", "gamepad", "leader", "none")


class Intervener(Protocol):
    def reset(self, env) -> None:
        """A new episode on `env` (the RobotEnv under any wrappers)."""

    def __call__(self, obs: dict, policy_action: np.ndarray) -> np.ndarray | None:
        """The action to execute instead of the policy's, or None."""

    def demonstrate(self, obs: dict) -> np.ndarray:
        """Drive the arm for a whole demonstration episode."""


def checked_action(action, space, counts: dict) -> np.ndarray | None:
    """An intervention made safe to send: None when it holds NaN/inf (counted in counts["rejected"]), clipped
    to the action space otherwise (counted in counts["clipped"]). A wrong shape is a programming error."""
    action = np.asarray(action, dtype=np.float32)
    if action.shape != space.shape:
        raise ValueError(f"intervention action has shape {action.shape}; expected {space.shape}")
    if not np.all(np.isfinite(action)):
        counts["rejected"] = counts.get("rejected", 0) + 1
        log.warning("intervention %s rejected: not finite; the policy keeps the arm this step", action)
        return None
    clipped = np.clip(action, space.low, space.high).astype(np.float32)
    if not np.array_equal(clipped, action):
        counts["clipped"] = counts.get("clipped", 0) + 1
    return clipped


class NoIntervener:
    """Nobody watching: the policy always acts. Demonstrations are impossible."""

    def reset(self, env) -> None:
        pass

    def __call__(self, obs, policy_action):
        return None

    def demonstrate(self, obs):
        raise ValueError("intervener 'none' cannot demonstrate; use --demos 0 or another intervener")


class ScriptedIntervener:
    """The scripted expert as a person watching the arm (it reads the cube's pose from the simulator, as a
    person's eyes would). It takes over when

    - stuck: the tool point moved less than `stuck_distance` over the last `stuck_steps` steps, cube not held;
    - heading for failure: the cube was pushed more than `push_distance` from where it stood when the policy
      got the arm (at the start, or when the intervener last handed back), not held;
    - late: `late_fraction` of the episode is gone and the cube is not held (it then keeps control);

    and drives for `takeover_steps` steps before handing back. With `until_held`, a stuck or pushing takeover
    instead drives until the cube has been held for `held_steps` steps (at most `max_takeover_steps`): a
    whole grasp, as a person with a leader arm would do it, rather than a fixed slice of one.

    The thresholds model a person who steps in when the arm is failing, not merely slow. They were set with
    `bench/intervener_triggers.py` on the zero-shot sim policy under sim-gap (60 unaided episodes, 16 failed):
    a late call at 80% of the episode fired on 1 episode the policy then finished and caught 14 failures; at
    60% it fired on 10 such episodes and caught 15. A push call at 5 cm fired on 5 and caught 9; at 3 cm, 13
    and 10. Each false call costs the steps a person drives for nothing.

    The stuck window (8 steps, 0.8 s at 10 Hz) is eager: it fires while a policy sits at the cube closing its
    jaw. With a fixed 15-step takeover the expert then handed back mid-grasp and the rule often fired again
    (17 stuck calls in 60 replayed episodes, `bench/intervener_replay.py`); `until_held` (the default) makes
    a takeover a whole grasp (2 calls, share of steps 0.113 against 0.134). In 2-hour HIL runs on sim-gap
    (docs/hil.md) it reached 98% and 93% success with 0.117 and 0.099 of the last 200 episodes' steps
    intervened (the second with a lower entropy target), against 98% and 0.120 with fixed takeovers: no
    clear change by itself, kept because it is what a person would do. A 16-step window makes fewer stuck
    calls still, but two runs with it fell below 90%: the stuck takeovers are also the grasp
    demonstrations the learner imitates."""

    def __init__(self, takeover_steps: int = 15, stuck_steps: int = 8, stuck_distance: float = 0.01,
                 push_distance: float = 0.05, late_fraction: float = 0.8, until_held: bool = True,
                 held_steps: int = 3, max_takeover_steps: int = 40):
        self.takeover_steps, self.stuck_steps, self.stuck_distance = takeover_steps, stuck_steps, stuck_distance
        self.push_distance, self.late_fraction = push_distance, late_fraction
        self.until_held, self.held_steps, self.max_takeover_steps = until_held, held_steps, max_takeover_steps
        self.env = self.expert = None

    def reset(self, env) -> None:
        from tidyarm.robot.sim_robot import scripted_expert

        self.env = env.unwrapped
        self.expert = scripted_expert(self.env)
        robot = self.env.robot
        self.data, self.task, self.site = robot.data, robot.task, robot.kin.site_id
        self.cube_start = self.task.cube_pos(self.data).copy()
        self.tool_history: deque[np.ndarray] = deque(maxlen=self.stuck_steps + 1)
        self.remaining, self.steps, self.held, self.reason = 0, 0, 0, None

    def holding(self) -> bool:
        return bool(self.task.grasp_terms(self.data)[1])

    def tool_point(self) -> np.ndarray:
        return self.data.site_xpos[self.site].copy()

    def pushed(self) -> float:
        """How far (m, horizontally) the cube has moved since the policy got the arm."""
        if self.cube_start is None:  # just handed back: judge pushes from here, not from the episode's start
            self.cube_start = self.task.cube_pos(self.data).copy()
        return float(np.linalg.norm((self.task.cube_pos(self.data) - self.cube_start)[:2]))

    def _reason(self) -> str | None:
        """Why a person would step in now, or None."""
        if self.holding():
            return None
        if self.steps >= self.late_fraction * self.env.max_episode_steps:
            return "late"
        if self.pushed() > self.push_distance:
            return "pushing"
        if len(self.tool_history) > self.stuck_steps and \
                np.linalg.norm(self.tool_history[-1] - self.tool_history[0]) < self.stuck_distance:
            return "stuck"
        return None

    def __call__(self, obs, policy_action):
        self.steps += 1
        self.tool_history.append(self.tool_point())
        self.held = self.held + 1 if self.holding() else 0
        if self.remaining > 0 and self.grasp_done():
            self.remaining = 0
        if self.remaining == 0:
            reason = self._reason()
            if reason is None:
                return None
            if reason == "late":
                self.remaining = self.env.max_episode_steps
            else:
                self.remaining = self.max_takeover_steps if self.until_held else self.takeover_steps
            self.reason, self.held = reason, 0
            self.tool_history.clear()  # judge the policy afresh after handing back
            self.cube_start = None
        self.remaining -= 1
        return self.expert(obs)

    def grasp_done(self) -> bool:
        """An `until_held` takeover (not a late one, which keeps the arm) has held the cube long enough."""
        return self.until_held and self.reason != "late" and self.held >= self.held_steps

    def demonstrate(self, obs):
        return self.expert(obs)


class TeleopIntervener:
    """A keyboard or gamepad: any movement input (or a jaw toggle) takes over; `linger_steps` steps after the
    last input the policy gets the arm back."""

    def __init__(self, device, linger_steps: int = 5, deadzone: float = 0.05):
        self.device, self.linger_steps, self.deadzone = device, linger_steps, deadzone
        self.quiet, self.last_jaw = linger_steps, None

    def reset(self, env) -> None:
        self.device.reset()
        self.quiet, self.last_jaw = self.linger_steps, None

    def __call__(self, obs, policy_action):
        action = np.asarray(self.device.read(obs).action, dtype=np.float32)
        touched = np.abs(action[:4]).max() > self.deadzone or (self.last_jaw is not None and action[4] != self.last_jaw)
        self.last_jaw = action[4]
        self.quiet = 0 if touched else self.quiet + 1
        return action if self.quiet < self.linger_steps else None

    def demonstrate(self, obs):
        return np.asarray(self.device.read(obs).action, dtype=np.float32)


def make_intervener(name: str, **kwargs) -> Intervener:
    """An intervener by name (scripted, keyboard, gamepad, leader, none); devices are connected here."""
    if name == "scripted":
        return ScriptedIntervener()
    if name == "none":
        return NoIntervener()
    if name in ("keyboard", "gamepad"):
        from tidyarm.teleop.base import make_teleop

        return TeleopIntervener(make_teleop(name))
    if name == "leader":
        from tidyarm.hil.leader import connect_leader_arm

        return connect_leader_arm(**kwargs)
    raise ValueError(f"unknown intervener {name!r}; valid: {list(INTERVENERS)}")
