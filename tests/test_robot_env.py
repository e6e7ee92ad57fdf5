"""RobotEnv presents So101Env's pixel spaces, so a sim-trained pixel policy runs on a robot unchanged;
the deploy loop logs and stops safely."""

import dataclasses

import mujoco
import numpy as np
import pytest

from tidyarm.robot import RealityGap, SimRobot
from tidyarm.robot.deploy import DeployCommand, deploy, load_pixel_policy
from tidyarm.robot.robot_env import RobotEnv, preprocess
from tidyarm.robot.sim_robot import scripted_expert
from tidyarm.sim.env import EnvConfig

CONFIG = EnvConfig(task="lift", obs_mode="pixels", image_size=16, supersample=2)


def robot_env(gap: RealityGap | None = None, config: EnvConfig = CONFIG) -> RobotEnv:
    side = config.image_size * config.supersample
    return RobotEnv(SimRobot(config.task, gap, camera_size=(side, side)), config)


def test_observation_and_action_spaces_equal_so101env_pixels_mode():
    env, sim = robot_env(), CONFIG.make()
    assert env.observation_space == sim.observation_space
    assert env.action_space == sim.action_space
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert reward == 0.0 and not terminated and "success" not in info  # a robot does not know its reward
    assert "oracle_success" in info  # the sim robot's evaluation oracle, for measurement only
    env.close()


def test_images_match_so101env_for_the_same_state():
    sim = dataclasses.replace(CONFIG, randomize=False).make()
    sim.reset(seed=4)
    env = robot_env()
    env.reset(seed=4)
    robot = env.robot
    robot.data.qpos[:] = sim.data.qpos
    mujoco.mj_forward(robot.model, robot.data)
    reading = robot.get_observation()
    env._forward(reading.joint_pos)
    obs = env._observation(reading, None)
    for camera in CONFIG.cameras:
        np.testing.assert_array_equal(obs[camera], sim.camera_image(camera))
    np.testing.assert_allclose(obs["proprio"][12:15], sim.data.site_xpos[sim.kin.site_id], atol=1e-6)  # tool_pos
    env.close()


def test_nan_action_is_held_not_sent():
    env = robot_env()
    env.reset(seed=1)
    obs, *_ , info = env.step(np.array([np.nan, 0, 0, 0, 0]))
    assert np.all(np.isfinite(info["sent"])) and np.all(np.isfinite(obs["proprio"]))
    assert info["safety"]["rejected_nonfinite"] == 1
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    env.close()


def test_scripted_expert_drives_the_sim_robot():
    env = robot_env(RealityGap.preset("sim-gap"))
    obs, _ = env.reset(seed=2)
    expert = scripted_expert(env)
    start = env.robot.get_observation().joint_pos
    for _ in range(5):
        action = expert(obs)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)
    assert np.abs(env.robot.get_observation().joint_pos - start).max() > 0.05  # it moved toward the cube
    env.close()


def test_preprocess_crops_and_box_filters_any_camera_size():
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[:, 8:56] = 200  # the centre square
    image = preprocess(frame, (16, 16))
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and np.all(image == 200)
    with pytest.raises(ValueError, match="uint8"):
        preprocess(frame.astype(np.float32), (16, 16))


def test_pretrained_pixel_policy_runs_on_the_gap_robot(one_torch_thread):
    loaded = load_pixel_policy("pretrained:lift-pixels")
    env = robot_env(RealityGap.preset("sim-gap"), loaded.env_config)
    obs, _ = env.reset(seed=0)
    loaded.reset()
    for _ in range(4):
        obs, _, _, _, info = env.step(loaded(obs))
    assert env.observation_space.contains(obs) and info["safety"]["commands"] == 4
    env.close()


def test_deploy_writes_a_summary_and_holds_on_ctrl_c(tmp_path, monkeypatch, one_torch_thread):
    import tidyarm.robot.deploy as deploy_module

    loaded = load_pixel_policy("pretrained:lift-pixels")
    calls = {"n": 0}

    class Interrupting:  # the user presses Ctrl-C during the 6th step
        def __init__(self):
            self.env_config, self.kind, self.meta, self.policy = loaded.env_config, "pixels", loaded.meta, \
                loaded.policy

        def reset(self):
            loaded.reset()

        def __call__(self, obs):
            calls["n"] += 1
            if calls["n"] == 6:
                raise KeyboardInterrupt
            return loaded(obs)

    config = DeployCommand(robot="sim", episodes=2, max_steps=4, out=tmp_path)
    summary = deploy(config, log=lambda line: None)
    assert summary["episodes"] == 2 and summary["ticks"] == 8 and summary["stopped"] is None
    assert (tmp_path / "deploy.json").is_file() and summary["safety"]["rejected_nonfinite"] == 0
    monkeypatch.setattr(deploy_module, "load_pixel_policy", lambda name: Interrupting())
    summary = deploy(dataclasses.replace(config, episodes=3), log=lambda line: None)
    assert summary["stopped"].startswith("interrupted") and summary["episodes"] == 1
    assert summary["safety"]["holds"] >= 1
    with pytest.raises(ValueError, match="unknown robot"):
        DeployCommand(robot="so101")
    with pytest.raises(ValueError, match="pixel policies"):
        load_pixel_policy("pretrained:lift")


def test_a_robot_nobody_resets_is_driven_home_through_the_safety_layer():
    from tidyarm.robot.base import Robot
    from tidyarm.sim.robot import HOME_QPOS

    class Remote(Robot):  # a driver with no reset_scene: only the five hooks, over a simulated arm
        cameras = ("wrist", "front")

        def __init__(self):
            super().__init__()
            self.sim = SimRobot("lift", camera_size=(32, 32))

        def _connect(self):
            self.sim.connect()
            self.sim.send_action(HOME_QPOS + np.array([0.6, -0.3, 0.3, -0.4, 0.5, -0.5]))  # somewhere else
            self.sim.advance(20)

        def _disconnect(self):
            self.sim.disconnect()

        def _read(self, images):
            return self.sim._read(images)

        def _write(self, targets):
            self.sim.send_action(targets)  # one tick per command on the simulated arm

        def _now(self):
            return self.sim._now()

    env = RobotEnv(Remote(), CONFIG)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs["proprio"][:6], HOME_QPOS, atol=0.03)
    assert env.robot.safety.counts["clipped_step"] >= 1  # it got there in limited steps, not in one jump
    env.close()
