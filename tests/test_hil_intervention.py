"""Interveners: NaN and out-of-range commands never reach the robot; the scripted intervener takes over a stuck
arm and hands back; teleop and leader-arm interveners engage on input and let go after a pause."""

import json

import gymnasium as gym
import numpy as np
import pytest

from tidyarm.hil.intervention import NoIntervener, ScriptedIntervener, TeleopIntervener, checked_action, make_intervener
from tidyarm.hil.leader import LeaderArmIntervener
from tidyarm.robot.robot_env import RobotEnv
from tidyarm.robot.sim_robot import SimRobot
from tidyarm.robot.so101 import load_calibration
from tidyarm.sim.env import EnvConfig
from tidyarm.teleop.base import TeleopCommand

SPACE = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)


def _robot_env() -> RobotEnv:
    config = EnvConfig(task="lift", obs_mode="pixels", image_size=8, supersample=1)
    return RobotEnv(SimRobot("lift", camera_size=(8, 8)), config)


def test_checked_action_rejects_nonfinite_clips_range_and_refuses_wrong_shape():
    counts = {}
    assert checked_action([np.nan, 0, 0, 0, 1], SPACE, counts) is None
    assert checked_action([0, np.inf, 0, 0, 1], SPACE, counts) is None
    np.testing.assert_array_equal(checked_action([3.0, -2.0, 0.5, 0, 1], SPACE, counts), [1, -1, 0.5, 0, 1])
    assert counts == {"rejected": 2, "clipped": 1}
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(5,\)"):
        checked_action([0, 0, 0], SPACE, counts)


def _decisions(intervener: ScriptedIntervener, seed: int, steps: int, pushed: float = 0.0,
               watch=lambda: None) -> list[bool]:
    """Whether the intervener took the arm at each step of a policy that does nothing. `pushed`: metres the
    cube counts as already pushed from where the policy got the arm; `watch` runs after each decision."""
    env = _robot_env()
    obs, _ = env.reset(seed=seed)
    intervener.reset(env)
    intervener.cube_start = intervener.cube_start + [pushed, 0.0, 0.0]
    still = np.array([0, 0, 0, 0, 1], np.float32)
    decisions = []
    for _ in range(steps):
        override = intervener(obs, still)
        decisions.append(override is not None)
        watch()
        obs, *_ = env.step(still if override is None else override)
    env.close()
    return decisions


def test_scripted_intervener_takes_over_a_stuck_arm_and_hands_back():
    intervener = ScriptedIntervener(takeover_steps=5, stuck_steps=4, late_fraction=1.0, until_held=False)
    decisions = _decisions(intervener, seed=3, steps=12)
    first = decisions.index(True)
    assert 3 <= first <= 5, decisions  # after stuck_steps of no motion
    assert decisions[first:first + 5] == [True] * 5  # drives for takeover_steps
    assert decisions[first + 5] is False  # then hands back


def test_scripted_intervener_until_held_hands_back_once_the_cube_is_held():
    intervener = ScriptedIntervener(stuck_steps=4, late_fraction=1.0, until_held=True, held_steps=3,
                                    max_takeover_steps=30)
    held = []  # steps the cube had been held, at each decision
    decisions = _decisions(intervener, seed=3, steps=40, watch=lambda: held.append(intervener.held))
    first = decisions.index(True)
    handed_back = decisions.index(False, first)
    assert held[first] == 0 and handed_back - first < 30, decisions  # not a timed slice: it ended on the hold
    assert held[handed_back] == 3, held  # the expert let go after 3 steps of holding the cube


def test_scripted_intervener_judges_pushes_from_where_it_handed_back():
    intervener = ScriptedIntervener(takeover_steps=5, stuck_steps=100, late_fraction=1.0, until_held=False)
    decisions = _decisions(intervener, seed=3, steps=12, pushed=2 * intervener.push_distance)
    # One takeover; the cube stays where it was pushed, and that alone does not call the person back.
    assert decisions == [True] * 5 + [False] * 7, decisions


def test_scripted_intervener_takes_over_when_late_and_keeps_the_arm():
    late = ScriptedIntervener(stuck_steps=100, late_fraction=0.1)  # late after 6 of lift's 60 steps
    decisions = _decisions(late, seed=4, steps=20)
    assert decisions[:5] == [False] * 5 and all(decisions[6:])


class _Device:
    """A teleop device whose commands are set by the test."""

    def __init__(self):
        self.action = np.array([0, 0, 0, 0, 1], np.float32)

    def reset(self):
        pass

    def read(self, observation=None):
        return TeleopCommand(self.action.copy())


def test_teleop_intervener_engages_on_input_and_lingers():
    device = _Device()
    intervener = TeleopIntervener(device, linger_steps=2)
    intervener.reset(None)
    assert intervener({}, None) is None
    device.action[0] = 1.0  # the person pushes forward
    np.testing.assert_array_equal(intervener({}, None), [1, 0, 0, 0, 1])
    device.action[0] = 0.0  # lets go: control stays with the person for linger_steps
    assert intervener({}, None) is not None
    assert intervener({}, None) is None
    device.action[4] = -1.0  # a jaw toggle alone also takes over
    assert intervener({}, None) is not None


def test_no_intervener_cannot_demonstrate_and_unknown_names_are_listed():
    with pytest.raises(ValueError, match="cannot demonstrate"):
        NoIntervener().demonstrate({})
    with pytest.raises(ValueError, match="valid"):
        make_intervener("joystick")


class _LeaderBus:
    def __init__(self):
        self.positions = {motor: 2048 for motor in range(1, 7)}
        self.torque = None

    def open(self):
        pass

    def read_positions(self, ids):
        return {motor: self.positions[motor] for motor in ids}

    def set_torque(self, ids, enabled):
        self.torque = enabled


def test_leader_arm_engages_when_moved_and_steers_the_follower_toward_it(tmp_path):
    names = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
    path = tmp_path / "leader.json"
    path.write_text(json.dumps({name: {"id": index + 1, "drive_mode": 0, "homing_offset": 0, "range_min": 1000,
                                       "range_max": 3096} for index, name in enumerate(names)}))
    bus = _LeaderBus()
    leader = LeaderArmIntervener(bus, load_calibration(path), linger_steps=2)
    assert bus.torque is False  # moved by hand
    env = _robot_env()
    obs, _ = env.reset(seed=0)
    leader.reset(env)
    assert leader(obs, None) is None  # at rest
    bus.positions[1] += 150  # swing the leader's shoulder pan by about 13 degrees
    action = leader(obs, None)
    assert action is not None and np.all(np.abs(action) <= 1)
    before = env.control.ee_target.copy()
    for _ in range(15):
        obs, *_ = env.step(leader.demonstrate(obs))
    target = env.kin.forward(leader.read())[0]
    assert np.linalg.norm(env.control.ee_target - target) < 0.5 * np.linalg.norm(before - target)
    env.close()


def test_intervention_share_weighs_episodes_by_their_steps():
    from tidyarm.hil.learner import intervention_share

    episodes = [{"steps": 100, "intervention_rate": 0.5}, {"steps": 50, "intervention_rate": 0.0}]
    assert intervention_share(episodes) == pytest.approx(50 / 150)  # a per-episode mean would say 0.25
    assert intervention_share([]) == 0.0
