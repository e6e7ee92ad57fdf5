"""The shared safety layer: nothing non-finite or out of range is sent, steps are bounded, silence holds."""

import numpy as np
import pytest

from tidyarm.robot.base import joint_limits
from tidyarm.robot.safety import SafetyConfig, SafetyLayer, UnsafeCommand

# A pose well inside every joint range (the sim's home pose sits near the wrist_flex limit).
POSE = np.array([0.1, -0.4, 0.3, 1.2, 0.0, 0.5])


def layer(**overrides) -> SafetyLayer:
    safety = SafetyLayer(SafetyConfig(**overrides), *joint_limits())
    safety.reset(POSE, now=0.0)
    return safety


def test_nonfinite_command_is_never_sent_and_the_arm_holds():
    safety = layer()
    measured = POSE + 0.01
    command = POSE.copy()
    command[2] = np.nan
    sent = safety.filter(command, measured, now=0.1)
    assert np.all(np.isfinite(sent))
    np.testing.assert_allclose(sent, measured)
    assert safety.counts["rejected_nonfinite"] == 1
    inf_sent = safety.filter(np.full(6, np.inf), measured, now=0.2)
    np.testing.assert_allclose(inf_sent, measured)
    assert safety.counts["rejected_nonfinite"] == 2


def test_nonfinite_raise_mode_names_the_joint_and_still_holds():
    safety = layer(nonfinite="raise")
    command = POSE.copy()
    command[2] = np.nan
    with pytest.raises(UnsafeCommand, match="elbow_flex"):
        safety.filter(command, POSE + 0.02, now=0.1)
    np.testing.assert_allclose(safety.last_sent, POSE + 0.02)


def test_out_of_range_command_is_clipped_to_the_joint_limits():
    low, high = joint_limits()
    safety = layer(max_step=10.0, gripper_max_step=10.0)
    sent = safety.filter(high + 1.0, POSE, now=0.1)
    np.testing.assert_allclose(sent, high)
    sent = safety.filter(low - 5.0, POSE, now=0.2)
    np.testing.assert_allclose(sent, low)
    assert safety.counts["clipped_limits"] == 2


def test_change_per_tick_is_limited_separately_for_arm_and_gripper():
    safety = layer(max_step=0.1, gripper_max_step=0.3)
    command = POSE + np.array([0.5, -0.5, 0.05, 0.0, 0.0, -0.8])
    sent = safety.filter(command, POSE, now=0.1)
    np.testing.assert_allclose(sent - POSE, [0.1, -0.1, 0.05, 0.0, 0.0, -0.3])
    assert safety.counts["clipped_step"] == 1
    sent = safety.filter(command, POSE, now=0.2)  # keeps closing in from what was sent, not from measured
    np.testing.assert_allclose(sent - POSE, [0.2, -0.2, 0.05, 0.0, 0.0, -0.6])


def test_watchdog_fires_after_the_timeout_and_holds_the_measured_position():
    safety = layer(watchdog_timeout=0.5)
    safety.filter(POSE + 0.05, POSE, now=1.0)
    assert not safety.expired(1.4)
    assert safety.expired(1.6)
    measured = POSE + 0.02
    held = safety.hold(measured, "watchdog")
    np.testing.assert_allclose(held, measured)
    assert safety.counts["watchdog_holds"] == 1
    assert not safety.expired(5.0)  # already holding: fires once
    # The next command moves on from the held position, step-limited.
    sent = safety.filter(POSE + 1.0, measured, now=5.1)
    np.testing.assert_allclose(sent[:5], measured[:5] + 0.35)


def test_bad_config_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="max_step"):
        SafetyConfig(max_step=0.0)
    with pytest.raises(ValueError, match="nonfinite"):
        SafetyConfig(nonfinite="ignore")
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        layer().filter(np.zeros(5), POSE, now=0.0)
