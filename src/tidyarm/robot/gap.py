"""RealityGap: how the simulated robot differs from the simulator the policies trained in.

`RealityGap()` (no arguments) is the identity: the robot is the nominal simulator. `RealityGap.preset("sim-gap")`
is the held-out gap: every value lies outside what training randomization (sim/randomize.py) draws, so a
policy cannot have seen it. docs/robot.md has the table of defaults against the training ranges.
Physics parameters are edits of the compiled MjModel (applied once: the real world does not re-draw itself);
servo effects (latency, backlash, deadband) and the camera's colour response act at run time, in sim_robot.py.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields

import mujoco
import numpy as np

from tidyarm.sim.robot import JOINT_NAMES
from tidyarm.sim.scene import OBJECTS

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class RealityGap:
    """Fixed differences between the robot's world and the nominal simulator. Scales multiply nominal values."""

    object_friction_scale: float = 1.0
    """Sliding friction of the objects (cube 0.6 nominal; training draws 0.3-0.9 absolute)."""
    object_mass_scale: float = 1.0
    """Object masses and inertias (training draws 0.7-1.3)."""
    kp_scale: float = 1.0
    """Servo position gain kp (training draws 0.8-1.2)."""
    kv_scale: float = 1.0
    """Servo velocity gain kv (training never changes it)."""
    damping_scale: float = 1.0
    """Joint damping (training draws 0.8-1.2)."""
    deadband_deg: float = 0.0
    """Servo deadband (deg): within it the servo stops driving (training: none)."""
    backlash_deg: float = 0.0
    """Gear play (deg) on every joint: a reversal moves nothing for this much (training: none)."""
    latency_ticks: int = 0
    """Control ticks between a command and the servos acting on it (training draws 0-2)."""
    front_camera_shift: Vec3 = (0.0, 0.0, 0.0)
    """Front camera position offset (m) (training: up to 0.025 per axis)."""
    front_camera_tilt_deg: Vec3 = (0.0, 0.0, 0.0)
    """Front camera orientation offset, xyz Euler (deg) (training: up to 1 per axis)."""
    wrist_camera_shift: Vec3 = (0.0, 0.0, 0.0)
    """Wrist camera position offset (m) (training: up to 0.002 per axis)."""
    wrist_camera_tilt_deg: Vec3 = (0.0, 0.0, 0.0)
    """Wrist camera orientation offset (deg) (training: up to 1 per axis)."""
    color_gain: Vec3 = (1.0, 1.0, 1.0)
    """Per-channel RGB gain (white balance) of both cameras (training: lighting and object tints only)."""
    gamma: float = 1.0
    """Camera response exponent on [0, 1] intensities (>1 darkens mid-tones)."""
    image_noise: float = 0.0
    """Std of Gaussian pixel noise (uint8 levels) (training: none)."""
    joint_noise: float = 0.0
    """Std (rad) of noise on measured joint positions (training: 0.002)."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            positive = field.name.endswith("scale") or field.name in ("gamma", "color_gain")
            if any(not np.isfinite(v) or (v <= 0 if positive else False) for v in values):
                raise ValueError(f"RealityGap.{field.name} = {value}: expected finite values"
                                 + (" > 0" if positive else ""))
            if field.name in ("deadband_deg", "backlash_deg", "latency_ticks", "image_noise", "joint_noise") \
                    and value < 0:
                raise ValueError(f"RealityGap.{field.name} = {value}: expected a value >= 0")

    @classmethod
    def preset(cls, name: str) -> RealityGap:
        if name not in GAP_PRESETS:
            raise ValueError(f"unknown reality-gap preset {name!r}; valid: {sorted(GAP_PRESETS)}")
        return GAP_PRESETS[name]

    def apply_physics(self, model: mujoco.MjModel) -> None:
        """Edit a freshly compiled model in place (masses, friction, gains, camera poses). Call mj_setConst after."""
        for name in OBJECTS:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) < 0:
                continue
            body = model.body(name).id
            model.body_mass[body] *= self.object_mass_scale
            model.body_inertia[body] *= self.object_mass_scale
            model.geom_friction[model.geom_bodyid == body, 0] *= self.object_friction_scale
        actuators = np.array([model.actuator(name).id for name in JOINT_NAMES])
        dofs = np.array([model.joint(name).dofadr[0] for name in JOINT_NAMES])
        model.actuator_gainprm[actuators, 0] *= self.kp_scale
        model.actuator_biasprm[actuators, 1] = -model.actuator_gainprm[actuators, 0]
        model.actuator_biasprm[actuators, 2] *= self.kv_scale
        model.dof_damping[dofs] *= self.damping_scale
        for camera, shift, tilt in (("front", self.front_camera_shift, self.front_camera_tilt_deg),
                                    ("wrist", self.wrist_camera_shift, self.wrist_camera_tilt_deg)):
            cam = model.camera(camera).id
            model.cam_pos[cam] += shift
            rotation = np.zeros(4)
            mujoco.mju_euler2Quat(rotation, np.deg2rad(tilt), "xyz")
            mujoco.mju_mulQuat(model.cam_quat[cam], model.cam_quat[cam].copy(), rotation)

    def color_response(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The camera's colour response applied to a rendered uint8 frame."""
        if self.color_gain == (1.0, 1.0, 1.0) and self.gamma == 1.0 and self.image_noise == 0:
            return image
        light = (image.astype(np.float32) / 255.0) ** self.gamma * np.asarray(self.color_gain, dtype=np.float32)
        light = light * 255.0
        if self.image_noise:
            light += rng.normal(0.0, self.image_noise, light.shape).astype(np.float32)
        return np.clip(np.round(light), 0, 255).astype(np.uint8)


class ServoModel:
    """Run-time servo effects: command latency, gear backlash and the position deadband."""

    def __init__(self, gap: RealityGap, initial: np.ndarray):
        self.latency = gap.latency_ticks
        self.half_play = np.deg2rad(gap.backlash_deg) / 2
        self.deadband = np.deg2rad(gap.deadband_deg)
        self.reset(initial)

    def reset(self, initial: np.ndarray) -> None:
        self.pending = deque([np.array(initial, dtype=np.float64)] * self.latency)
        self.effective = np.array(initial, dtype=np.float64)

    def command(self, target: np.ndarray) -> np.ndarray:
        """Latch a new command (delayed by the latency); returns the target the output shaft now follows."""
        self.pending.append(np.array(target, dtype=np.float64))
        arrived = self.pending.popleft()
        # Backlash as a play operator: the output follows the motor only once the play is taken up.
        self.effective = np.clip(self.effective, arrived - self.half_play, arrived + self.half_play)
        return self.effective

    def drive(self, joint_pos: np.ndarray) -> np.ndarray:
        """The actuator setpoint for this physics substep: inside the deadband the servo stops driving."""
        if not self.deadband:
            return self.effective
        return np.where(np.abs(self.effective - joint_pos) < self.deadband, joint_pos, self.effective)


# Held-out gaps for measuring transfer: every value outside what training randomization draws.
# "sim-gap" is the one the targets refer to; "sim-gap-mild" is smaller (docs/robot.md has both figures).
GAP_PRESETS: dict[str, RealityGap] = {
    "none": RealityGap(),
    "sim-gap": RealityGap(
        object_friction_scale=0.4, object_mass_scale=2.0, kp_scale=0.55, kv_scale=1.5, damping_scale=1.5,
        deadband_deg=0.8, backlash_deg=1.5, latency_ticks=4,
        front_camera_shift=(0.05, -0.04, 0.03), front_camera_tilt_deg=(4.0, -3.0, 2.0),
        wrist_camera_shift=(0.004, 0.002, -0.004), wrist_camera_tilt_deg=(3.0, 0.0, 1.0),
        color_gain=(1.25, 1.0, 0.75), gamma=1.35, image_noise=3.0, joint_noise=0.004),
    "sim-gap-mild": RealityGap(
        object_friction_scale=0.45, object_mass_scale=1.6, kp_scale=0.65, kv_scale=1.5, damping_scale=1.35,
        deadband_deg=0.5, backlash_deg=1.0, latency_ticks=3,
        front_camera_shift=(0.03, -0.03, 0.02), front_camera_tilt_deg=(2.0, -2.0, 1.5),
        wrist_camera_shift=(0.003, 0.0, -0.003), wrist_camera_tilt_deg=(2.0, 0.0, 0.0),
        color_gain=(1.12, 1.0, 0.85), gamma=1.2, image_noise=2.0, joint_noise=0.003),
}
