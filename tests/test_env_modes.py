"""Observation and action modes, rendering, and the end-effector controller."""

import numpy as np
import pytest

from tidyarm.sim import Randomization, So101Env, make_expert


def test_state_layout_covers_the_vector():
    env = So101Env("place")
    observation, _ = env.reset(seed=0)
    layout = env.state_layout
    assert max(s.stop for s in layout.values()) == observation.shape[0]
    tool = env.data.site_xpos[env.kin.site_id]
    np.testing.assert_allclose(observation[layout["tool_pos"]], tool, atol=1e-5)
    np.testing.assert_allclose(observation[layout["cube_pos"]], env.task.cube_pos(env.data), atol=1e-5)


@pytest.mark.parametrize("obs_mode", ["pixels", "state+pixels"])
def test_pixel_modes_give_uint8_images_of_the_requested_size(obs_mode):
    env = So101Env("lift", obs_mode=obs_mode, image_size=(24, 40), cameras=("wrist", "front"))
    observation, _ = env.reset(seed=0)
    observation, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(observation)
    for camera in ("wrist", "front"):
        assert observation[camera].dtype == np.uint8 and observation[camera].shape == (24, 40, 3)
        assert observation[camera].std() > 1.0  # an actual picture, not a blank buffer
    env.close()


def test_render_rgb_array():
    env = So101Env("reach", render_mode="rgb_array", render_size=(48, 64))
    env.reset(seed=0)
    assert env.render().shape == (48, 64, 3)
    env.close()


@pytest.mark.parametrize("action_mode", ["joint", "joint_delta"])
def test_expert_drives_joint_action_modes(action_mode):
    env = So101Env("lift", action_mode=action_mode, randomization=Randomization.off())
    expert = make_expert(env)
    env.reset(seed=0)
    success = False
    for _ in range(env.max_episode_steps):
        _, _, _, truncated, info = env.step(expert())
        success |= info["success"]
    assert success


def test_ee_action_moves_tool_in_commanded_direction():
    env = So101Env("reach", randomization=Randomization.off())
    env.reset(seed=0)
    start = env.data.site_xpos[env.kin.site_id].copy()
    for _ in range(4):
        env.step(np.array([0, 0, 1.0, 0, 1.0], dtype=np.float32))  # up
    moved = env.data.site_xpos[env.kin.site_id] - start
    assert moved[2] > 0.05 and abs(moved[0]) < 0.01 and abs(moved[1]) < 0.01


def test_ik_round_trip_over_the_grasp_workspace():
    env = So101Env("lift", randomization=Randomization.off())
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        xy = env.task.sample_on_table(rng)
        target = np.array([*xy, rng.uniform(0.01, 0.08)])
        joints = env.kin.solve_ik(env.control.target, target, iterations=30)
        position, rotation = env.kin.forward(joints)
        assert np.linalg.norm(position - target) < 2e-3
        assert -rotation[2, 2] < -0.9  # fingers within about 25 degrees of straight down
        assert np.all(joints >= env.kin.joint_low) and np.all(joints <= env.kin.joint_high)


def test_workspace_bounds_hold_the_target():
    env = So101Env("reach", randomization=Randomization.off())
    env.reset(seed=0)
    for _ in range(30):
        env.step(np.array([1.0, 1.0, -1.0, 0, 0], dtype=np.float32))
    target = env.control.ee_target
    assert np.all(target >= env.control.workspace.low) and np.all(target <= env.control.workspace.high)
    assert np.linalg.norm(target[:2] - env.kin.pan_axis_xy) <= env.control.workspace.max_radius + 1e-9
