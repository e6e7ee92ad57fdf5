"""RobotEnv: a Gymnasium env over any Robot, with So101Env's `pixels` observation and action spaces.

A sim-trained pixel policy runs on it unchanged: the observation is {"proprio": joint_pos, joint_vel, tool_pos,
joint_command (21 floats, So101Env's layout), <camera>: uint8 (H, W, 3)}, images made the way So101Env makes them
(a frame `supersample` x the image size, area-averaged down; a camera of another size is centre-cropped to the
image's aspect and box-filtered), and actions go through the same controllers (sim/control.py), `ee` through
the sim's IK on the measured joints.

What a real robot cannot know stays out: reward is 0.0 and info has no "success" unless a reward wrapper
(the reward classifier) adds them. A robot with an evaluation oracle (SimRobot.privileged_success) fills
info["oracle_success"], for measurement only. Episodes truncate after `max_episode_steps`; never terminate.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
from PIL import Image

from tidyarm.robot.base import Robot, RobotObservation
from tidyarm.sim.control import ArmKinematics, make_control
from tidyarm.sim.env import PROPRIO_SIZE, EnvConfig
from tidyarm.sim.robot import HOME_QPOS
from tidyarm.sim.scene import build_scene
from tidyarm.sim.tasks import TASKS

HOME_TOLERANCE = 0.03  # rad: close enough to the home pose to start an episode on a robot without reset_scene


class RobotEnv(gym.Env):
    metadata = {"render_modes": [], "render_fps": 10}

    def __init__(self, robot: Robot, config: EnvConfig, max_episode_steps: int | None = None):
        if config.obs_mode != "pixels":
            raise ValueError(f"RobotEnv gives 'pixels' observations; the env config asks for {config.obs_mode!r}")
        missing = [camera for camera in config.cameras if camera not in robot.cameras]
        if missing:
            raise ValueError(f"the policy needs camera(s) {missing}; the robot has {list(robot.cameras)}")
        if abs(robot.control_hz - config.control_hz) > 1e-6:
            raise ValueError(f"robot runs at {robot.control_hz} Hz; the env config asks for {config.control_hz} Hz")
        self.robot, self.config = robot, config
        self.task_name, self.obs_mode, self.action_mode = config.task, "pixels", config.action_mode
        self.control_hz = robot.control_hz
        self.image_hw = (config.image_size, config.image_size)
        self.cameras, self.supersample = tuple(config.cameras), config.supersample
        self.max_episode_steps = max_episode_steps or TASKS[config.task].max_episode_steps
        # A kinematic copy of the arm: forward kinematics of the measured joints and the ee controller's IK.
        self.model = build_scene(TASKS[config.task].objects).compile()
        self.fk = mujoco.MjData(self.model)
        self.kin = ArmKinematics(self.model)
        self.control = make_control(config.action_mode, self.kin)
        self.action_space = self.control.action_space
        self.observation_space = pixel_observation_space(config)
        self.elapsed_steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if not self.robot.is_connected:
            self.robot.connect()
        if hasattr(self.robot, "reset_scene"):
            self.robot.reset_scene(seed)
        else:
            self._go_home()
        reading = self.robot.get_observation()
        self.control.reset(reading.joint_pos)  # the ee target starts at the measured tool point
        self._forward(reading.joint_pos)
        self.elapsed_steps = 0
        return self._observation(reading, self.robot.last_sent), self._info(None)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}; expected {self.action_space.shape} "
                             f"for action_mode '{self.action_mode}'")
        if np.all(np.isfinite(action)):
            action = np.clip(action, self.action_space.low, self.action_space.high)
            targets = self.control.targets(action, self.fk).copy()
        else:  # pass the bad value on: the safety layer rejects it, counts it and holds the arm
            targets = np.full(len(HOME_QPOS), np.nan)
        sent = self.robot.send_action(targets)
        reading = self.robot.get_observation()
        self._forward(reading.joint_pos)
        self.elapsed_steps += 1
        truncated = self.elapsed_steps >= self.max_episode_steps
        return self._observation(reading, sent), 0.0, False, truncated, self._info(sent)

    def close(self):
        if self.robot.is_connected:
            self.robot.disconnect()

    def _go_home(self, max_ticks: int = 100) -> None:
        """On a robot nobody resets: drive to the home pose through the safety layer (step-limited)."""
        for _ in range(max_ticks):
            if np.max(np.abs(self.robot.send_action(HOME_QPOS) - HOME_QPOS)) < 1e-9 and \
                    np.max(np.abs(self.robot.get_observation().joint_pos - HOME_QPOS)) < HOME_TOLERANCE:
                return
        raise RuntimeError(f"the arm did not reach the home pose within {max_ticks} ticks")

    def _forward(self, joint_pos: np.ndarray) -> None:
        self.fk.qpos[self.kin.qpos_adr] = joint_pos
        mujoco.mj_kinematics(self.model, self.fk)

    def _observation(self, reading: RobotObservation, sent: np.ndarray | None) -> dict:
        joint_vel = reading.joint_vel if reading.joint_vel is not None else np.zeros(len(reading.joint_pos))
        command = sent if sent is not None else reading.joint_pos
        proprio = np.concatenate([reading.joint_pos, joint_vel, self.fk.site_xpos[self.kin.site_id], command])
        images = {camera: preprocess(reading.images[camera], self.image_hw) for camera in self.cameras}
        return {"proprio": proprio.astype(np.float32), **images}

    def _info(self, sent: np.ndarray | None) -> dict:
        info = {"sent": sent, "safety": dict(self.robot.safety.counts)}
        oracle = getattr(self.robot, "privileged_success", None)
        if oracle is not None:
            info["oracle_success"] = bool(oracle())
        return info


def pixel_observation_space(config: EnvConfig) -> gym.spaces.Dict:
    """So101Env's `pixels` space for a config: proprio (21 floats) and one uint8 image per camera."""
    side = config.image_size
    images = {camera: gym.spaces.Box(0, 255, shape=(side, side, 3), dtype=np.uint8) for camera in config.cameras}
    proprio = gym.spaces.Box(-np.inf, np.inf, shape=(PROPRIO_SIZE,), dtype=np.float32)
    return gym.spaces.Dict({"proprio": proprio, **images})


def preprocess(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A camera frame as a policy image: centre-crop to the image's aspect, then area-average down to `size`.

    An integer multiple of `size` is block-averaged exactly as So101Env's supersampling does."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"camera frame is {frame.dtype} {frame.shape}; expected uint8 (H, W, 3)")
    height, width = size
    rows, cols = frame.shape[:2]
    if rows * width > cols * height:  # too tall: crop rows
        keep = cols * height // width
        frame = frame[(rows - keep) // 2:(rows - keep) // 2 + keep]
    elif rows * width < cols * height:
        keep = rows * width // height
        frame = frame[:, (cols - keep) // 2:(cols - keep) // 2 + keep]
    rows, cols = frame.shape[:2]
    if (rows, cols) == (height, width):
        return np.ascontiguousarray(frame)
    if rows % height == 0 and cols % width == 0 and rows // height == cols // width:
        factor = rows // height
        blocks = frame.reshape(height, factor, width, factor, 3).mean(axis=(1, 3), dtype=np.float32)
        return np.round(blocks).astype(np.uint8)
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BOX))
