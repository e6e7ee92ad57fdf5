"""LeRobot's SO-101 feature names and units, and the bridge between them and So101Env.

LeRobot's so101_follower reports each arm joint in degrees about the middle of its calibrated range and
the gripper as 0-100 (0 closed). Our sim joints are zero at the middle of their range too (robot.py), so
an arm joint converts by radians -> degrees, and the gripper maps linearly over its joint range.

Features of one frame:
- observation.state (6,): measured joint positions, LeRobot units.
- action (6,): the joint targets sent to the servos at that step, LeRobot units. An expert acting in `ee`
  mode still yields joint targets (the env's controller turned its action into them).
- observation.environment_state (k,): the task's privileged features (object and goal poses), the part of
  the env's state vector after proprioception, for state-based imitation.
- observation.images.<camera> (H, W, 3) uint8, stored as video.
"""

from __future__ import annotations

import numpy as np

from tidyarm.sim.env import PROPRIO_LAYOUT, PROPRIO_SIZE
from tidyarm.sim.robot import JOINT_NAMES

ROBOT_TYPE = "so101_follower"
STATE_NAMES: tuple[str, ...] = tuple(f"{joint}.pos" for joint in JOINT_NAMES)
STATE = "observation.state"
ACTION = "action"
ENVIRONMENT_STATE = "observation.environment_state"
IMAGE_PREFIX = "observation.images."
GRIPPER = len(JOINT_NAMES) - 1  # index of the gripper among the six joints
_JOINT_POS = slice(0, PROPRIO_LAYOUT["joint_pos"])


def image_key(camera: str) -> str:
    return IMAGE_PREFIX + camera


# -- units -----------------------------------------------------------------------------------------
def to_lerobot_units(joint_rad: np.ndarray, gripper_range: tuple[float, float]) -> np.ndarray:
    """Six joint angles (rad, ..., 6) -> LeRobot units: degrees for the arm, 0-100 (0 closed) for the gripper."""
    joint_rad = np.asarray(joint_rad, dtype=np.float64)
    low, high = gripper_range
    values = np.degrees(joint_rad)
    values[..., GRIPPER] = (joint_rad[..., GRIPPER] - low) / (high - low) * 100.0
    return values.astype(np.float32)


def from_lerobot_units(values: np.ndarray, gripper_range: tuple[float, float]) -> np.ndarray:
    """Inverse of to_lerobot_units: LeRobot units (..., 6) -> joint angles in radians (float64)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = gripper_range
    joint_rad = np.radians(values)
    joint_rad[..., GRIPPER] = low + values[..., GRIPPER] / 100.0 * (high - low)
    return joint_rad


def gripper_range(env) -> tuple[float, float]:
    """The gripper joint's range (rad) in this env's model: LeRobot's 0 and 100."""
    kin = env.unwrapped.kin
    return float(kin.joint_low[GRIPPER]), float(kin.joint_high[GRIPPER])


# -- features of an env ----------------------------------------------------------------------------
def environment_state_names(env) -> list[str]:
    """One name per element of observation.environment_state, e.g. cube_pos.0, cube_pos.1, ..."""
    layout = env.unwrapped.state_layout
    names = []
    for name, part in layout.items():
        if part.start >= PROPRIO_SIZE:
            names += [f"{name}.{i}" for i in range(part.stop - part.start)]
    return names


def features_spec(env, cameras: tuple[str, ...] = ()) -> dict[str, dict]:
    """LeRobot feature specs of what features_from_env returns (plus the action) for this env."""
    env = env.unwrapped
    joints = {"dtype": "float32", "shape": [len(STATE_NAMES)], "names": list(STATE_NAMES)}
    env_names = environment_state_names(env)
    specs = {ACTION: dict(joints), STATE: dict(joints),
             ENVIRONMENT_STATE: {"dtype": "float32", "shape": [len(env_names)], "names": env_names}}
    for camera in cameras:
        if camera not in env.cameras:
            raise ValueError(f"camera {camera!r} is not rendered by this env; its cameras: {list(env.cameras)}")
        height, width = env.image_hw
        specs[image_key(camera)] = {"dtype": "video", "shape": [height, width, 3],
                                    "names": ["height", "width", "channels"]}
    return specs


def features_from_env(env, obs) -> dict[str, np.ndarray]:
    """One frame's observation features from an observation the env just returned (any obs mode).

    Cameras are included when the observation carries them (pixel obs modes).
    """
    env = env.unwrapped
    grip = gripper_range(env)
    if isinstance(obs, dict):
        proprio = np.asarray(obs["proprio"])
        if "state" in obs:
            environment = np.asarray(obs["state"])[PROPRIO_SIZE:]
        else:  # pixels only: the same task features the state vector would carry, read now
            environment = np.concatenate(list(env.task.features(env.data).values()))
    else:
        proprio = np.asarray(obs)
        environment = proprio[PROPRIO_SIZE:]
    frame = {STATE: to_lerobot_units(proprio[_JOINT_POS], grip),
             ENVIRONMENT_STATE: np.asarray(environment, dtype=np.float32)}
    if isinstance(obs, dict):
        for camera in env.cameras:
            if camera in obs:
                frame[image_key(camera)] = np.asarray(obs[camera], dtype=np.uint8)
    return frame


def action_from_env(env) -> np.ndarray:
    """The joint targets of the last step (the servo command the controller produced), LeRobot units."""
    env = env.unwrapped
    return to_lerobot_units(env.control.target, gripper_range(env))


def env_action_from_joint_targets(env, targets: np.ndarray) -> np.ndarray:
    """An `action` vector (joint targets, LeRobot units) -> the normalized [-1, 1] action of the env's
    absolute `joint` action mode, which maps [-1, 1] linearly onto each joint's range (control.py).

    Targets beyond a joint's range are clipped to it, as the servos would be.
    """
    env = env.unwrapped
    if env.action_mode != "joint":
        raise ValueError(f"env action_mode is {env.action_mode!r}; joint-target actions need action_mode='joint'")
    targets = np.asarray(targets, dtype=np.float64)
    if targets.shape != (len(STATE_NAMES),):
        raise ValueError(f"joint targets have shape {targets.shape}; expected ({len(STATE_NAMES)},) in the order "
                         f"{list(STATE_NAMES)}")
    if not np.all(np.isfinite(targets)):
        raise ValueError(f"joint targets contain NaN or inf: {targets}")
    joint_rad = from_lerobot_units(targets, gripper_range(env))
    low, high = env.kin.joint_low, env.kin.joint_high
    return np.clip(2.0 * (joint_rad - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)
