"""So101Env: the SO-101 in MuJoCo as a Gymnasium environment.

Composition: scene (MjSpec) + task (reset, features, reward terms, success) + action control
(joint / joint_delta / ee) + randomizer. The model is compiled once; resets edit it in place.

Observation modes
- "state": float32 vector, layout in `env.state_layout` (name -> slice): robot proprioception
  (joint_pos 6, joint_vel 6, tool_pos 3, joint_command 6) followed by the task's features (object and
  goal poses). joint_command is the last servo target sent: with 0-2 steps of latency the arm has not
  reached it yet, and a policy that cannot see it cannot tell what it already asked for.
- "pixels": what a real robot provides: {"proprio": the proprioception above, <camera>: uint8 HxWx3}.
- "state+pixels": {"proprio", "state": the state vector, <camera>: uint8 HxWx3}: what a teacher or an
  asymmetric critic (state) and an image student (proprio + cameras) need from one env.
Episodes truncate after `max_episode_steps` (the task's default unless given); `terminated` is
reserved for real terminal states (the object fell off the table, or success when
`terminate_on_success`). `info["privileged"]` always holds the full simulator state (qpos, qvel)
for teachers, critics and experts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

from tidyarm.sim.control import ACTION_MODES, ArmKinematics, make_control
from tidyarm.sim.randomize import Randomization, Randomizer
from tidyarm.sim.robot import ARM_XML, HOME_QPOS, JOINT_NAMES
from tidyarm.sim.scene import build_scene
from tidyarm.sim.tasks import TASKS

OBS_MODES = ("state", "pixels", "state+pixels")
CAMERAS = ("wrist", "front")
# What a real arm reports too (its driver knows the last goal position it wrote to the servos).
PROPRIO_LAYOUT = {"joint_pos": 6, "joint_vel": 6, "tool_pos": 3, "joint_command": 6}
PROPRIO_SIZE = sum(PROPRIO_LAYOUT.values())
PHYSICS_TIMESTEP = 0.005
# MuJoCo warnings that mean the physics is no longer trustworthy.
_BLOWUP_WARNINGS = [int(w) for w in (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS,
                                      mujoco.mjtWarning.mjWARN_BADQVEL)]


class So101Env(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: str = "lift", obs_mode: str = "state", action_mode: str = "ee",
                 control_hz: float = 10.0, image_size: int | tuple[int, int] = 64, supersample: int = 1,
                 cameras: tuple[str, ...] = CAMERAS, randomization: Randomization | None = None,
                 terminate_on_success: bool = False, reward_weights: dict[str, float] | None = None,
                 max_episode_steps: int | None = None,
                 arm_xml: str | Path = ARM_XML, render_mode: str | None = None,
                 render_size: tuple[int, int] = (240, 320)):
        _check_choice("task", task, tuple(TASKS))
        _check_choice("obs_mode", obs_mode, OBS_MODES)
        _check_choice("action_mode", action_mode, ACTION_MODES)
        _check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        for camera in cameras:
            _check_choice("camera", camera, CAMERAS)
        substeps = round(1.0 / (control_hz * PHYSICS_TIMESTEP))
        if not 1 <= substeps <= 200:
            raise ValueError(f"control_hz = {control_hz}: expected 1..200 Hz (physics runs at 200 Hz)")
        self.task_name, self.obs_mode, self.action_mode = task, obs_mode, action_mode
        self.control_hz, self.substeps = 200.0 / substeps, substeps
        self.image_hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if not 1 <= supersample <= 16:
            raise ValueError(f"supersample = {supersample}: expected an integer in 1 .. 16")
        self.supersample = int(supersample)
        self.cameras, self.terminate_on_success = tuple(cameras), terminate_on_success
        self.render_mode, self.render_size = render_mode, render_size
        self.metadata = {**self.metadata, "render_fps": self.control_hz}

        task_cls = TASKS[task]
        self.max_episode_steps = max_episode_steps or task_cls.max_episode_steps
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps = {max_episode_steps}: expected a positive number of steps")
        self.model = build_scene(task_cls.objects, arm_xml).compile()
        self.data = mujoco.MjData(self.model)
        self.kin = ArmKinematics(self.model)
        self.task = task_cls(self.model, self.kin, self.control_hz, reward_weights)
        self.control = make_control(action_mode, self.kin)
        self.randomization = Randomization() if randomization is None else randomization
        self.randomizer = Randomizer(self.model, self.randomization)
        self.action_space = self.control.action_space
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.state_layout = self._layout()
        self.observation_space = self._observation_space()
        self._last_obs = None

    # -- Gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self.randomizer.apply(rng)
        mujoco.mj_setConst(self.model, self.data)  # masses and sizes may have changed; clobbers qpos
        mujoco.mj_resetData(self.model, self.data)
        qpos = HOME_QPOS + rng.normal(0.0, self.randomization.init_joint_noise, size=len(JOINT_NAMES))
        qpos = np.clip(qpos, self.kin.joint_low, self.kin.joint_high)
        self.data.qpos[self.kin.qpos_adr] = qpos
        self.task.reset(self.data, rng)
        self.data.ctrl[self.kin.actuator_ids] = qpos
        mujoco.mj_forward(self.model, self.data)
        self.control.reset(qpos)
        self._pending = deque([qpos.copy()] * self.randomizer.latency)  # commands still in flight
        self.elapsed_steps = 0
        self._last_obs = self._observation()
        return self._last_obs, self._info(self.task.score(self.data), unstable=False)

    def step(self, action):
        action = self._validate_action(action)
        command = self.control.targets(action, self.data).copy()
        if self.randomization.action_noise > 0:  # servo-command noise, in rad so every action mode sees the same
            command = np.clip(command + self.np_random.normal(0, self.randomization.action_noise, command.shape),
                              self.kin.joint_low, self.kin.joint_high)
        self._pending.append(command)
        self.data.ctrl[self.kin.actuator_ids] = self._pending.popleft()
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        self.elapsed_steps += 1
        if self._unstable():  # keep the last good observation; the next reset restores the physics
            return self._last_obs, 0.0, False, True, self._info(None, unstable=True)
        score = self.task.score(self.data)
        reward = self.task.reward(score.terms)
        terminated = score.failed or (self.terminate_on_success and score.success)
        truncated = self.elapsed_steps >= self.max_episode_steps  # the task's time limit
        self._last_obs = self._observation()
        return self._last_obs, reward, terminated, truncated, self._info(score, unstable=False)

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_camera("front", self.render_size)
        return None

    def close(self):
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    # -- Observations ------------------------------------------------------------------------------
    def render_camera(self, camera: str, size: tuple[int, int] | None = None) -> np.ndarray:
        """uint8 (H, W, 3) image from a named camera. Needs a GL backend (MUJOCO_GL=egl when headless)."""
        height, width = size or self.image_hw
        renderer = self._renderers.get((height, width))
        if renderer is None:
            try:
                renderer = self._renderers[(height, width)] = mujoco.Renderer(self.model, height, width)
            except mujoco.FatalError as error:
                raise RuntimeError(f"cannot render camera '{camera}': no OpenGL context ({error}). On a machine "
                                   "without a display, set MUJOCO_GL=egl before Python imports mujoco.") from error
        renderer.update_scene(self.data, camera)
        return renderer.render()

    def _proprio(self) -> np.ndarray:
        noise = self.randomization.joint_obs_noise
        joint_pos = self.data.qpos[self.kin.qpos_adr] + self.np_random.normal(0, noise, 6) if noise else \
            self.data.qpos[self.kin.qpos_adr]
        joint_vel = self.data.qvel[self.kin.dof_adr] + self.np_random.normal(0, 10 * noise, 6) if noise else \
            self.data.qvel[self.kin.dof_adr]
        return np.concatenate([joint_pos, joint_vel, self.data.site_xpos[self.kin.site_id], self.control.target])

    def _state(self, proprio: np.ndarray) -> np.ndarray:
        features = self.task.features(self.data)
        return np.concatenate([proprio, *features.values()]).astype(np.float32)

    def camera_image(self, camera: str) -> np.ndarray:
        """The observation image of one camera: rendered at `supersample` x the image size, then area-averaged,
        so a 16-px image is a faithful thumbnail of the scene instead of an aliased sample of it."""
        if self.supersample == 1:
            return self.render_camera(camera)
        (height, width), factor = self.image_hw, self.supersample
        image = self.render_camera(camera, (height * factor, width * factor))
        blocks = image.reshape(height, factor, width, factor, 3).mean(axis=(1, 3), dtype=np.float32)
        return np.round(blocks).astype(np.uint8)

    def _observation(self):
        proprio = self._proprio()
        if self.obs_mode == "state":
            return self._state(proprio)
        images = {camera: self.camera_image(camera) for camera in self.cameras}
        if self.obs_mode == "pixels":
            return {"proprio": proprio.astype(np.float32), **images}
        return {"proprio": proprio.astype(np.float32), "state": self._state(proprio), **images}

    def _layout(self) -> dict[str, slice]:
        sizes = dict(PROPRIO_LAYOUT)
        sizes.update({name: len(value) for name, value in self.task.features(self.data).items()})
        layout, start = {}, 0
        for name, size in sizes.items():
            layout[name] = slice(start, start + size)
            start += size
        return layout

    def _observation_space(self) -> gym.Space:
        state_size = max(s.stop for s in self.state_layout.values())
        state = gym.spaces.Box(-np.inf, np.inf, shape=(state_size,), dtype=np.float32)
        if self.obs_mode == "state":
            return state
        images = {camera: gym.spaces.Box(0, 255, shape=(*self.image_hw, 3), dtype=np.uint8) for camera in self.cameras}
        proprio = gym.spaces.Box(-np.inf, np.inf, shape=(PROPRIO_SIZE,), dtype=np.float32)
        if self.obs_mode == "pixels":
            return gym.spaces.Dict({"proprio": proprio, **images})
        return gym.spaces.Dict({"proprio": proprio, "state": state, **images})

    # -- Safety ------------------------------------------------------------------------------------
    def _validate_action(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}; expected {self.action_space.shape} "
                             f"for action_mode '{self.action_mode}'")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}; the simulation was not stepped")
        return np.minimum(np.maximum(action, self.action_space.low), self.action_space.high)

    def _unstable(self) -> bool:
        # MuJoCo checks qpos/qvel/qacc every step; on a non-finite or huge value it warns and resets the
        # state itself, so the warning counters are the complete signal.
        return bool(self.data.warning.number[_BLOWUP_WARNINGS].any())

    def _info(self, score, unstable: bool) -> dict:
        privileged = np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float32)
        if not np.all(np.isfinite(privileged)):
            privileged = np.zeros_like(privileged)
        info = {"success": bool(score.success) if score else False, "sim_unstable": unstable,
                "privileged": privileged, "latency_steps": self.randomizer.latency}
        info["reward_terms"] = {name: float(value) for name, value in score.terms.items()} if score else {}
        return info


def _check_choice(field: str, value, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"unknown {field} {value!r}; valid: {list(valid)}")


@dataclass(frozen=True)
class EnvConfig:
    """How to build an env. Saved beside every policy, so training and evaluation share one factory."""

    task: str = "lift"
    """Task name: reach, lift or place."""
    obs_mode: str = "state"
    """Observation mode: state, pixels or state+pixels."""
    action_mode: str = "ee"
    """Action mode: ee, joint or joint_delta."""
    control_hz: float = 10.0
    """Control rate (Hz); physics runs at 200 Hz."""
    image_size: int = 64
    """Height and width of camera observations (pixel modes)."""
    supersample: int = 1
    """Render at this multiple of image_size and area-average down to it (e.g. 8: 128 px rendered, 16 px seen)."""
    cameras: tuple[str, ...] = CAMERAS
    """Cameras in pixel observations."""
    randomize: bool = True
    """Domain randomization with the default ranges (False turns every group off)."""

    def __post_init__(self) -> None:
        _check_choice("task", self.task, tuple(TASKS))
        _check_choice("obs_mode", self.obs_mode, OBS_MODES)
        _check_choice("action_mode", self.action_mode, ACTION_MODES)

    def make(self, **overrides) -> So101Env:
        """A fresh So101Env; `overrides` pass straight to So101Env (e.g. render_mode)."""
        randomization = Randomization() if self.randomize else Randomization.off()
        return So101Env(self.task, obs_mode=self.obs_mode, action_mode=self.action_mode, control_hz=self.control_hz,
                        image_size=self.image_size, supersample=self.supersample, cameras=self.cameras,
                        randomization=randomization, **overrides)

    def to_dict(self) -> dict:
        return {**asdict(self), "cameras": list(self.cameras)}

    @classmethod
    def from_dict(cls, values: dict) -> EnvConfig:
        unknown = set(values) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"unknown env config field(s) {sorted(unknown)}; expected {[f.name for f in fields(cls)]}")
        return cls(**{**values, "cameras": tuple(values.get("cameras", CAMERAS))})
