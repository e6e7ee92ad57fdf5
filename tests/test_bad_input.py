"""Bad input gives clear errors and never reaches the simulator; blow-ups truncate cleanly."""

import numpy as np
import pytest

from tidyarm.sim import Randomization, So101Env
from tidyarm.sim.scene import build_scene


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_and_leaves_sim_untouched(bad):
    env = So101Env("lift")
    env.reset(seed=0)
    qpos, time = env.data.qpos.copy(), env.data.time
    action = np.zeros(5, dtype=np.float32)
    action[2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(action)
    np.testing.assert_array_equal(env.data.qpos, qpos)
    assert env.data.time == time


def test_out_of_bounds_action_is_clipped():
    first, second = So101Env("reach", randomization=Randomization.off()), So101Env("reach",
                                                                                   randomization=Randomization.off())
    first.reset(seed=0)
    second.reset(seed=0)
    big = first.step(np.array([50, -50, 9, 3, 7], dtype=np.float32))[0]
    clipped = second.step(np.array([1, -1, 1, 1, 1], dtype=np.float32))[0]
    np.testing.assert_allclose(big, clipped)


def test_wrong_action_shape_names_both_shapes():
    env = So101Env("lift")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(5,\)"):
        env.step(np.zeros(3))


@pytest.mark.parametrize(("kwargs", "names"), [
    ({"task": "juggle"}, "reach"),
    ({"obs_mode": "depth"}, r"state\+pixels"),
    ({"action_mode": "torque"}, "joint_delta"),
    ({"cameras": ("side",)}, "wrist"),
])
def test_unknown_names_list_valid_ones(kwargs, names):
    with pytest.raises(ValueError, match=names):
        So101Env(**kwargs)


def test_unknown_reward_term_and_bad_rate_are_rejected():
    with pytest.raises(ValueError, match="valid terms"):
        So101Env("lift", reward_weights={"style": 1.0})
    with pytest.raises(ValueError, match="control_hz"):
        So101Env("lift", control_hz=0.1)


def test_unknown_scene_object_and_incomplete_arm_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="valid names"):
        build_scene(("piano",))
    arm = tmp_path / "arm.xml"
    arm.write_text('<mujoco><worldbody><body><joint name="shoulder_pan"/><geom size="0.1"/></body>'
                   '</worldbody></mujoco>')
    with pytest.raises(ValueError, match="lacks joints"):
        build_scene(("cube",), arm)


def test_physics_blowup_truncates_with_flag_and_finite_observation():
    env = So101Env("lift")
    observation, _ = env.reset(seed=0)
    env.data.qvel[:] = 1e12  # an impossible state, as a diverging simulation would produce
    observation, reward, terminated, truncated, info = env.step(np.zeros(5, dtype=np.float32))
    assert truncated and info["sim_unstable"] and not terminated
    assert np.all(np.isfinite(observation)) and np.all(np.isfinite(info["privileged"]))
    observation, info = env.reset(seed=1)
    assert not info["sim_unstable"] and np.all(np.isfinite(observation))


def test_invalid_randomization_range_names_the_field():
    with pytest.raises(ValueError, match="cube_half_size"):
        Randomization(cube_half_size=(0.02, 0.01))
