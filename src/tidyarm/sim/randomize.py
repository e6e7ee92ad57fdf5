"""Domain randomization, drawn once per episode from the env's seeded generator.

Everything is an in-place edit of MjModel fields, restored to nominal values first, so a reset never
recompiles the model (and a pixel env keeps its renderer). Every group can be switched off and every
range lives in `Randomization`; `Randomization.off()` turns everything off.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import mujoco
import numpy as np

from tidyarm.sim.robot import JOINT_NAMES
from tidyarm.sim.scene import OBJECTS, TABLE_MATERIALS

Range = tuple[float, float]


@dataclass(frozen=True)
class Randomization:
    """Per-episode randomization. Scales multiply the model's nominal value."""

    lighting: bool = True
    """Randomize light intensity, direction and ambient level."""
    light_scale: Range = (0.5, 1.3)
    ambient: Range = (0.15, 0.45)
    light_shift: float = 0.3
    """Light position jitter (m) per axis."""

    colors: bool = True
    """Randomize table texture and tint, object and arm colours."""
    object_color_jitter: float = 0.15
    """Per-channel RGB jitter of objects (they keep their hue family: the cube stays reddish)."""
    table_tint: Range = (0.6, 1.0)
    arm_color_jitter: float = 0.1

    cameras: bool = True
    """Randomize camera pose and field of view."""
    wrist_shift: float = 0.002
    wrist_tilt_deg: float = 1.0
    front_shift: float = 0.025
    front_tilt_deg: float = 1.0
    fovy_deg: float = 1.0

    objects: bool = True
    """Randomize object size, mass and friction."""
    cube_half_size: Range = (0.011, 0.014)
    mass_scale: Range = (0.7, 1.3)
    friction: Range = (0.3, 0.9)

    actuators: bool = True
    """Randomize servo gain, damping, force limit and joint friction loss."""
    kp_scale: Range = (0.8, 1.2)
    damping_scale: Range = (0.8, 1.2)
    force_scale: Range = (0.85, 1.15)
    frictionloss_scale: Range = (0.5, 1.5)

    latency_steps: tuple[int, int] = (0, 2)
    """Action latency in control steps, drawn per episode (inclusive); (0, 0) turns it off."""
    action_noise: float = 0.005
    """Std (rad) of Gaussian noise added to every servo target, whatever the action mode."""
    joint_obs_noise: float = 0.002
    """Std (rad) of noise on observed joint positions (velocities get 10x)."""
    init_joint_noise: float = 0.02
    """Std (rad) of noise on the initial joint positions."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"Randomization.{field.name} = {value}: expected (low, high) with low <= high")
            if isinstance(value, float) and value < 0:
                raise ValueError(f"Randomization.{field.name} = {value}: expected a value >= 0")
        if self.latency_steps[0] < 0:
            raise ValueError(f"Randomization.latency_steps = {self.latency_steps}: expected steps >= 0")

    @classmethod
    def off(cls) -> Randomization:
        return cls(lighting=False, colors=False, cameras=False, objects=False, actuators=False,
                   latency_steps=(0, 0), action_noise=0.0, joint_obs_noise=0.0, init_joint_noise=0.0)

    def without(self, *groups: str) -> Randomization:
        """A copy with the named boolean groups switched off."""
        return replace(self, **{group: False for group in groups})


class Randomizer:
    """Remembers the nominal model and applies a fresh draw of `Randomization` at each reset."""

    def __init__(self, model: mujoco.MjModel, config: Randomization):
        self.model, self.config = model, config
        self.nominal = {name: getattr(model, name).copy() for name in _EDITED_FIELDS}
        self.nominal_headlight = model.vis.headlight.ambient.copy()
        self.actuators = np.array([model.actuator(name).id for name in JOINT_NAMES])
        self.dofs = np.array([model.joint(name).dofadr[0] for name in JOINT_NAMES])
        self.arm_geoms = [g for g in range(model.ngeom) if model.geom_contype[g] == 2]
        self.object_geoms = [model.geom(name).id for name in ("cube", "can", "bottle") if _has_geom(model, name)]
        # Geoms of each object body, so a multi-geom object (bowl, bottle) gets one colour.
        self.object_parts = [np.flatnonzero(model.geom_bodyid == model.body(name).id) for name in OBJECTS
                             if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) >= 0]
        self.table_geom = model.geom("table").id
        self.table_materials = [model.material(name).id for name in TABLE_MATERIALS]
        self.cameras = {name: model.camera(name).id for name in ("wrist", "front")}
        self.latency = 0

    def apply(self, rng: np.random.Generator) -> None:
        model, config = self.model, self.config
        for name, value in self.nominal.items():
            getattr(model, name)[:] = value
        model.vis.headlight.ambient[:] = self.nominal_headlight
        if config.lighting:
            self._lighting(rng)
        if config.colors:
            self._colors(rng)
        if config.cameras:
            self._cameras(rng)
        if config.objects:
            self._objects(rng)
        if config.actuators:
            self._actuators(rng)
        self.latency = int(rng.integers(config.latency_steps[0], config.latency_steps[1] + 1))

    def _lighting(self, rng: np.random.Generator) -> None:
        model, config = self.model, self.config
        model.light_diffuse[:] *= rng.uniform(*config.light_scale, size=(model.nlight, 1))
        model.light_pos[:] += rng.uniform(-config.light_shift, config.light_shift, size=model.light_pos.shape)
        model.vis.headlight.ambient[:] = rng.uniform(*config.ambient)

    def _colors(self, rng: np.random.Generator) -> None:
        model, config = self.model, self.config
        model.geom_matid[self.table_geom] = rng.choice(self.table_materials)
        model.mat_rgba[self.table_materials, :3] = rng.uniform(*config.table_tint, size=(len(self.table_materials), 3))
        groups = [(geoms, config.object_color_jitter) for geoms in self.object_parts]
        for geoms, jitter in [*groups, (self.arm_geoms, config.arm_color_jitter)]:
            shift = rng.uniform(-jitter, jitter, size=3)
            model.geom_rgba[geoms, :3] = np.clip(model.geom_rgba[geoms, :3] + shift, 0.0, 1.0)

    def _cameras(self, rng: np.random.Generator) -> None:
        config = self.config
        for name, shift, tilt in (("wrist", config.wrist_shift, config.wrist_tilt_deg),
                                  ("front", config.front_shift, config.front_tilt_deg)):
            cam = self.cameras[name]
            self.model.cam_pos[cam] += rng.uniform(-shift, shift, size=3)
            rotation = np.zeros(4)
            mujoco.mju_euler2Quat(rotation, np.deg2rad(rng.uniform(-tilt, tilt, size=3)), "xyz")
            mujoco.mju_mulQuat(self.model.cam_quat[cam], self.model.cam_quat[cam].copy(), rotation)
            self.model.cam_fovy[cam] += rng.uniform(-config.fovy_deg, config.fovy_deg)

    def _objects(self, rng: np.random.Generator) -> None:
        model, config = self.model, self.config
        if _has_geom(model, "cube"):
            geom = model.geom("cube").id
            body = model.geom_bodyid[geom]
            half = rng.uniform(*config.cube_half_size)
            scale = half / self.nominal["geom_size"][geom, 0]
            model.geom_size[geom] = half
            model.geom_rbound[geom] = np.sqrt(3) * half
            model.geom_aabb[geom, 3:] = half
            model.body_mass[body] *= scale**3  # same material, new volume
            model.body_inertia[body] *= scale**5
        for geom in self.object_geoms:
            body = model.geom_bodyid[geom]
            model.body_mass[body] *= rng.uniform(*config.mass_scale)
            model.body_inertia[body] *= model.body_mass[body] / self.nominal["body_mass"][body]
            model.geom_friction[geom, 0] = rng.uniform(*config.friction)

    def _actuators(self, rng: np.random.Generator) -> None:
        model, config, ids, dofs = self.model, self.config, self.actuators, self.dofs
        kp = model.actuator_gainprm[ids, 0] * rng.uniform(*config.kp_scale, size=len(ids))
        model.actuator_gainprm[ids, 0] = kp
        model.actuator_biasprm[ids, 1] = -kp
        model.dof_damping[dofs] *= rng.uniform(*config.damping_scale, size=len(dofs))
        model.actuator_forcerange[ids] *= rng.uniform(*config.force_scale, size=(len(ids), 1))
        model.dof_frictionloss[dofs] *= rng.uniform(*config.frictionloss_scale, size=len(dofs))


# Every MjModel field `apply` may edit; restored to nominal before each draw.
_EDITED_FIELDS = (
    "light_diffuse", "light_pos", "geom_matid", "mat_rgba", "geom_rgba", "cam_pos", "cam_quat", "cam_fovy",
    "geom_size", "geom_rbound", "geom_aabb", "body_mass", "body_inertia", "geom_friction",
    "actuator_gainprm", "actuator_biasprm", "dof_damping", "actuator_forcerange", "dof_frictionloss",
    "body_pos",
)


def _has_geom(model: mujoco.MjModel, name: str) -> bool:
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name) >= 0
