"""The real SO-101 driver through a fake servo bus: unit mapping, safety on the wire, watchdog thread."""

import json
import time

import numpy as np
import pytest

from tidyarm.robot.safety import SafetyConfig
from tidyarm.robot.so101 import FeetechBus, SO101Robot, load_calibration

IDS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow_flex": 3, "wrist_flex": 4, "wrist_roll": 5, "gripper": 6}


class FakeBus:
    """Servos that reach their goal instantly; records every goal written."""

    def __init__(self):
        self.positions = {motor: 2048 for motor in IDS.values()}
        self.positions[6] = 1200
        self.writes, self.torque, self.open_ = [], False, False

    def open(self):
        self.open_ = True

    def close(self):
        self.open_ = False

    def read_positions(self, ids):
        return {motor: self.positions[motor] for motor in ids}

    def write_goals(self, goals):
        self.writes.append(dict(goals))
        self.positions.update(goals)

    def set_torque(self, ids, enabled):
        self.torque = enabled


@pytest.fixture
def calibration(tmp_path):
    path = tmp_path / "follower.json"
    entries = {name: {"id": motor, "drive_mode": 0, "homing_offset": 0, "range_min": 1000, "range_max": 3096}
               for name, motor in IDS.items()}
    entries["gripper"].update(range_min=1000, range_max=2400)
    path.write_text(json.dumps(entries))
    return load_calibration(path)


def test_driver_maps_units_and_sends_only_safe_goals(calibration):
    bus = FakeBus()
    with SO101Robot(bus, calibration, watchdog=False) as robot:
        reading = robot.get_observation()
        assert reading.joint_pos[0] == pytest.approx(0.0)  # tick 2048 is the middle of 1000..3096
        sent = robot.send_action(reading.joint_pos + np.array([0.1, 0, 0, 0, 0, 0]))
        assert bus.writes[-1][1] == 2048 + round(0.1 * 4096 / (2 * np.pi))
        np.testing.assert_allclose(robot.get_observation().joint_pos[0], sent[0], atol=2 * np.pi / 4096)
        writes = len(bus.writes)
        robot.send_action(np.full(6, np.nan))  # rejected: the hold goes out, the NaN never does
        assert len(bus.writes) == writes + 1
        assert all(1000 <= goal <= 3096 for goal in bus.writes[-1].values())
        robot.send_action(np.full(6, 50.0))  # far out of range: step-limited and clipped in ticks
        assert all(1000 <= goal <= 3096 for goal in bus.writes[-1].values())
    assert not bus.open_


def test_watchdog_thread_holds_when_commands_stop(calibration):
    bus = FakeBus()
    robot = SO101Robot(bus, calibration, control_hz=50.0, safety=SafetyConfig(watchdog_timeout=0.05))
    with robot:
        robot.send_action(robot.get_observation().joint_pos)
        time.sleep(0.3)
        assert robot.safety.counts["watchdog_holds"] == 1


def test_missing_sdk_and_bad_calibration_are_clear(tmp_path):
    try:
        import scservo_sdk  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"tidyarm\[real\]"):
            FeetechBus("/dev/null")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"shoulder_pan": {"id": 1}}))
    with pytest.raises(ValueError, match="lacks motor"):
        load_calibration(path)
