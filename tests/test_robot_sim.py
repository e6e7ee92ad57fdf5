"""SimRobot behind the Robot interface, and the reality gap really changing physics, servos and images."""

import time

import numpy as np
import pytest

from tidyarm.robot import RealityGap, RobotNotConnected, SafetyConfig, SimRobot
from tidyarm.robot.gap import ServoModel
from tidyarm.sim.randomize import Randomization

SMALL = dict(camera_size=(24, 24))


def pan_after(robot: SimRobot, delta: float, ticks: int) -> list[float]:
    """Pan angle (rad, relative to the start) after each of `ticks` ticks commanding a pan move of `delta`."""
    start = robot.data.qpos[robot.kin.qpos_adr].copy()
    command = start.copy()
    command[0] += delta
    moves = []
    for _ in range(ticks):
        robot.send_action(command)
        moves.append(float(robot.data.qpos[robot.kin.qpos_adr[0]] - start[0]))
    return moves


def test_sim_robot_implements_the_protocol_and_returns_what_was_sent():
    robot = SimRobot("lift", **SMALL)
    with pytest.raises(RobotNotConnected, match="connect"):
        robot.get_observation()
    with robot:
        assert robot.is_connected
        reading = robot.get_observation()
        assert reading.joint_pos.shape == (6,) and reading.joint_vel.shape == (6,)
        assert set(reading.images) == {"wrist", "front"}
        assert all(image.dtype == np.uint8 and image.shape == (24, 24, 3) for image in reading.images.values())
        far = reading.joint_pos + np.array([2.0, 0, 0, 0, 0, 0])
        sent = robot.send_action(far)
        assert sent[0] == pytest.approx(reading.joint_pos[0] + robot.safety.config.max_step)
        np.testing.assert_allclose(robot.last_sent, sent)
        bad = robot.send_action(np.full(6, np.nan))  # rejected: the arm holds where it is
        assert np.all(np.isfinite(bad)) and np.all(np.isfinite(robot.data.ctrl))
        assert robot.safety.counts["rejected_nonfinite"] == 1
        assert reading.timestamp < robot.get_observation().timestamp
    assert not robot.is_connected


def test_watchdog_holds_the_measured_position_when_commands_stop():
    robot = SimRobot("lift", safety=SafetyConfig(watchdog_timeout=0.05), **SMALL)
    with robot:
        start = robot.get_observation().joint_pos
        robot.send_action(start + np.array([0.35, 0, 0, 0, 0, 0]))  # one tick (0.1 s): the arm is on its way
        measured = robot.data.qpos[robot.kin.qpos_adr].copy()
        assert measured[0] < start[0] + 0.3
        assert robot.check_watchdog()  # 0.1 s without a new command > 0.05 s
        held = robot.last_sent
        np.testing.assert_allclose(held, measured, atol=1e-9)  # the target is where the arm is...
        robot.advance(5)
        assert robot.data.qpos[robot.kin.qpos_adr[0]] < start[0] + 0.3  # ...so it never reaches the old target
        assert robot.safety.counts["watchdog_holds"] == 1  # fires once, then stays held
        np.testing.assert_allclose(robot.last_sent, held)


def test_lost_link_and_realtime_overrun_hold_the_arm():
    robot = SimRobot("lift", realtime=True, safety=SafetyConfig(watchdog_timeout=0.25), **SMALL)
    with robot:
        start = robot.get_observation().joint_pos
        began = time.monotonic()
        robot.send_action(start)
        robot.send_action(start)
        assert time.monotonic() - began >= 0.09  # paced to 10 Hz
        robot.send_action(start + np.array([0.3, 0, 0, 0, 0, 0]))
        time.sleep(0.45)  # the commander stalls: ticks are lost, the world moves on, the watchdog holds
        robot.send_action(start + np.array([0.3, 0, 0, 0, 0, 0]))
        assert robot.lost_ticks >= 3 and robot.overruns == 1
        assert robot.safety.counts["watchdog_holds"] == 1
        held = robot.link_lost()
        np.testing.assert_allclose(held, robot.data.qpos[robot.kin.qpos_adr], atol=1e-9)
        assert robot.safety.counts["link_lost_holds"] == 1


def test_latency_delays_motion_by_its_ticks():
    for latency in (0, 3):
        with SimRobot("lift", RealityGap(latency_ticks=latency), **SMALL) as robot:
            moves = pan_after(robot, 0.2, latency + 1)
        assert max(abs(m) for m in moves[:latency]) < 0.003 if latency else True
        assert moves[latency] > 0.05


def test_deadband_ignores_tiny_commands_and_backlash_eats_reversals():
    tiny = np.deg2rad(0.6)
    with SimRobot("lift", **SMALL) as robot:
        assert pan_after(robot, tiny, 3)[-1] > 0.7 * tiny
    with SimRobot("lift", RealityGap(deadband_deg=1.0), **SMALL) as robot:
        assert abs(pan_after(robot, tiny, 3)[-1]) < 0.2 * tiny
    servo = ServoModel(RealityGap(backlash_deg=2.0), np.zeros(6))
    forward = servo.command(np.full(6, 0.1)).copy()
    np.testing.assert_allclose(forward, 0.1 - np.deg2rad(1.0))  # lags by half the play while moving
    back = servo.command(np.full(6, 0.1 - np.deg2rad(1.5)))  # a reversal smaller than the play: no motion
    np.testing.assert_allclose(back, forward)


def test_colour_response_and_camera_pose_change_the_images():
    def mean_rgb(gap):
        with SimRobot("lift", gap, seed=3, **SMALL) as robot:
            return {name: image.reshape(-1, 3).mean(0).astype(float)
                    for name, image in robot.get_observation().images.items()}
    nominal = mean_rgb(RealityGap())
    warm = mean_rgb(RealityGap(color_gain=(1.3, 1.0, 0.7)))
    assert warm["front"][0] > nominal["front"][0] + 5 and warm["front"][2] < nominal["front"][2] - 5
    shifted = mean_rgb(RealityGap(front_camera_tilt_deg=(6.0, 0.0, 0.0)))
    assert not np.allclose(shifted["front"], nominal["front"])
    np.testing.assert_allclose(shifted["wrist"], nominal["wrist"])


def test_physics_gap_edits_the_model():
    nominal, gapped = SimRobot("lift", **SMALL), SimRobot("lift", RealityGap(kp_scale=0.5, object_mass_scale=2.0,
                                                                              object_friction_scale=0.5), **SMALL)
    cube = nominal.model.body("cube").id
    assert gapped.model.body_mass[cube] == pytest.approx(2 * nominal.model.body_mass[cube])
    assert gapped.model.actuator_gainprm[0, 0] == pytest.approx(0.5 * nominal.model.actuator_gainprm[0, 0])
    assert gapped.model.actuator_biasprm[0, 1] == pytest.approx(-gapped.model.actuator_gainprm[0, 0])
    cube_geom = nominal.model.geom("cube").id
    assert gapped.model.geom_friction[cube_geom, 0] == pytest.approx(0.5 * nominal.model.geom_friction[cube_geom, 0])


@pytest.mark.parametrize("preset", ["sim-gap", "sim-gap-mild"])
def test_gap_presets_lie_outside_the_training_randomization(preset):
    gap, train = RealityGap.preset(preset), Randomization()
    assert not train.mass_scale[0] <= gap.object_mass_scale <= train.mass_scale[1]
    assert not train.kp_scale[0] <= gap.kp_scale <= train.kp_scale[1]
    assert not train.damping_scale[0] <= gap.damping_scale <= train.damping_scale[1]
    assert 0.6 * gap.object_friction_scale < train.friction[0]  # the cube's nominal friction is 0.6
    assert gap.latency_ticks > train.latency_steps[1]
    assert max(map(abs, gap.front_camera_shift)) > train.front_shift
    assert max(map(abs, gap.front_camera_tilt_deg)) > train.front_tilt_deg
    assert max(map(abs, gap.wrist_camera_shift)) > train.wrist_shift
    assert gap.deadband_deg > 0 and gap.backlash_deg > 0 and gap.color_gain != (1.0, 1.0, 1.0)


def test_bad_gap_and_robot_names_are_refused():
    with pytest.raises(ValueError, match="kp_scale"):
        RealityGap(kp_scale=0.0)
    with pytest.raises(ValueError, match="latency_ticks"):
        RealityGap(latency_ticks=-1)
    with pytest.raises(ValueError, match="sim-gap"):
        RealityGap.preset("real")
    with pytest.raises(ValueError, match="camera_size"):
        SimRobot("lift", camera_size=(0, 64))


def test_raise_mode_still_sends_the_hold():
    with SimRobot("lift", safety=SafetyConfig(nonfinite="raise"), **SMALL) as robot:
        start = robot.get_observation().joint_pos
        robot.send_action(start + np.array([0.3, 0, 0, 0, 0, 0]))
        bad = start.copy()
        bad[4] = np.inf
        with pytest.raises(ValueError, match="wrist_roll"):
            robot.send_action(bad)
        np.testing.assert_allclose(robot._latched, robot.data.qpos[robot.kin.qpos_adr], atol=1e-9)
