"""Compose the arm, a table, objects, lights and cameras into one MuJoCo model with MjSpec.

The arm file is the root spec (so its joint names stay exactly as written); everything else is
added to its world body. Objects are built from primitives, so no mesh assets are needed.
Names the rest of the code relies on: bodies "cube", "bowl", "can", "bottle", "target";
cameras "wrist" (from the arm file) and "front"; materials "table_*".
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from tidyarm.sim.robot import ARM_JOINTS, ARM_SITES, ARM_XML, JAW_PADS, JOINT_NAMES, WRIST_CAMERA

OBJECTS = ("cube", "bowl", "can", "bottle", "target")
TABLE_TOP = 0.0  # the arm's base stands on the table top
TABLE_MATERIALS = ("table_wood", "table_checker", "table_plain")
# Objects collide with the table, each other and the arm; the arm ignores itself (see so101.xml).
OBJECT_COLLISION = dict(contype=1, conaffinity=3)

CUBE_HALF = 0.0125  # m: a 2.5 cm cube
CUBE_DENSITY = 500.0  # kg/m^3: a wooden toy block, about 8 g
BOWL_INNER_RADIUS = 0.055  # m
BOWL_WALL_HEIGHT = 0.035  # m
FRONT_CAMERA_POS = (0.40, 0.0, 0.45)  # above and in front: the workspace fills the view
FRONT_CAMERA_LOOKAT = (0.22, 0.0, 0.0)
FRONT_CAMERA_FOVY = 55.0


def build_scene(objects: tuple[str, ...] = ("cube",), arm_xml: str | Path = ARM_XML) -> mujoco.MjSpec:
    """Return an MjSpec with the arm, table, lights, front camera and the named objects."""
    unknown = [name for name in objects if name not in OBJECTS]
    if unknown:
        raise ValueError(f"unknown scene object(s) {unknown}; valid names: {list(OBJECTS)}")
    spec = mujoco.MjSpec.from_file(str(arm_xml))
    _check_arm(spec, arm_xml)
    _set_physics_options(spec)
    _add_table(spec)
    _add_lights(spec)
    _add_front_camera(spec)
    builders = {"cube": _add_cube, "bowl": _add_bowl, "can": _add_can, "bottle": _add_bottle, "target": _add_target}
    for name in objects:
        builders[name](spec)
    return spec


def _check_arm(spec: mujoco.MjSpec, arm_xml: str | Path) -> None:
    joints = {joint.name for joint in spec.joints}
    missing = [name for name in JOINT_NAMES if name not in joints]
    if missing:
        raise ValueError(f"arm model {arm_xml} lacks joints {missing}; expected the SO-101 names {list(JOINT_NAMES)}")
    missing = [f"site {name}" for name in ARM_SITES if spec.site(name) is None]
    missing += [f"geom {name}" for name in JAW_PADS if spec.geom(name) is None]
    missing += [f"camera {WRIST_CAMERA}"] if spec.camera(WRIST_CAMERA) is None else []
    if missing:
        raise ValueError(f"arm model {arm_xml} lacks {missing}; see src/tidyarm/sim/assets/so101.xml")
    actuated = {actuator.target for actuator in spec.actuators}
    if not set(ARM_JOINTS) | {"gripper"} <= actuated:
        raise ValueError(f"arm model {arm_xml} needs a position actuator on each of {list(JOINT_NAMES)}")


def _set_physics_options(spec: mujoco.MjSpec) -> None:
    # Settings that hold a friction grasp (so101_facts.md): implicitfast, 5 ms, elliptic cone, impratio 10.
    spec.option.timestep = 0.005
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    # Software (EGL on Mesa) rendering spends most of its time on the shadow map: 2048 px costs 17 ms a
    # frame, 256 px under 4 ms, and low-resolution policy images cannot tell the difference.
    spec.visual.quality.shadowsize = 256


def _add_table(spec: mujoco.MjSpec) -> None:
    spec.add_texture(name="wood", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_FLAT,
                     mark=mujoco.mjtMark.mjMARK_RANDOM, random=0.25, rgb1=[0.55, 0.4, 0.28], rgb2=[0.55, 0.4, 0.28],
                     markrgb=[0.42, 0.3, 0.2], width=256, height=256)
    spec.add_texture(name="checker", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     rgb1=[0.75, 0.75, 0.72], rgb2=[0.55, 0.55, 0.52], width=256, height=256)
    wood = spec.add_material(name="table_wood", texrepeat=[4, 4])
    wood.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "wood"
    checker = spec.add_material(name="table_checker", texrepeat=[6, 6])
    checker.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "checker"
    spec.add_material(name="table_plain", rgba=[0.8, 0.8, 0.78, 1])
    table = spec.worldbody.add_body(name="table", pos=[0.25, 0, TABLE_TOP - 0.02])
    table.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.5, 0.55, 0.02], material="table_wood",
                   friction=[0.8, 0.02, 0.001], **OBJECT_COLLISION)
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.75],
                            rgba=[0.35, 0.35, 0.38, 1], contype=0, conaffinity=0)


def _add_lights(spec: mujoco.MjSpec) -> None:
    spec.worldbody.add_light(name="key", pos=[0.3, -0.3, 1.2], dir=[-0.1, 0.3, -1], diffuse=[0.7, 0.7, 0.7],
                             specular=[0.2, 0.2, 0.2], castshadow=True)
    spec.worldbody.add_light(name="fill", pos=[-0.2, 0.5, 1.0], dir=[0.4, -0.5, -1], diffuse=[0.3, 0.3, 0.3],
                             specular=[0, 0, 0], castshadow=False)
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    spec.visual.headlight.diffuse = [0.2, 0.2, 0.2]


def _add_front_camera(spec: mujoco.MjSpec) -> None:
    position = np.array(FRONT_CAMERA_POS)
    forward = np.array(FRONT_CAMERA_LOOKAT) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, up, -forward]).ravel())
    spec.worldbody.add_camera(name="front", pos=position, quat=quat, fovy=FRONT_CAMERA_FOVY)


def _add_cube(spec: mujoco.MjSpec) -> None:
    body = spec.worldbody.add_body(name="cube", pos=[0.22, 0, TABLE_TOP + CUBE_HALF])
    body.add_freejoint(name="cube")
    body.add_geom(name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF] * 3, density=CUBE_DENSITY,
                  rgba=[0.85, 0.12, 0.1, 1], friction=[0.6, 0.02, 0.001], condim=4, **OBJECT_COLLISION)


def _add_bowl(spec: mujoco.MjSpec, walls: int = 16) -> None:
    """A static green bowl: a floor disk and a ring of thin wall boxes. Moved per episode via body_pos."""
    body = spec.worldbody.add_body(name="bowl", pos=[0.25, 0.12, TABLE_TOP])
    green = [0.15, 0.6, 0.25, 1]
    body.add_geom(name="bowl_floor", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[BOWL_INNER_RADIUS + 0.004, 0.003],
                  pos=[0, 0, 0.003], rgba=green, **OBJECT_COLLISION)
    radius = BOWL_INNER_RADIUS + 0.003
    half_width = radius * np.tan(np.pi / walls) + 0.001
    for i in range(walls):
        angle = 2 * np.pi * i / walls
        body.add_geom(name=f"bowl_wall{i}", type=mujoco.mjtGeom.mjGEOM_BOX,
                      size=[0.003, half_width, BOWL_WALL_HEIGHT / 2],
                      pos=[radius * np.cos(angle), radius * np.sin(angle), BOWL_WALL_HEIGHT / 2],
                      euler=[0, 0, angle], rgba=green, **OBJECT_COLLISION)


def _add_can(spec: mujoco.MjSpec) -> None:
    body = spec.worldbody.add_body(name="can", pos=[0.36, -0.24, TABLE_TOP + 0.05])
    body.add_freejoint(name="can")
    body.add_geom(name="can", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.025, 0.05], mass=0.03,
                  rgba=[0.75, 0.75, 0.8, 1], condim=4, **OBJECT_COLLISION)


def _add_bottle(spec: mujoco.MjSpec) -> None:
    body = spec.worldbody.add_body(name="bottle", pos=[0.36, 0.24, TABLE_TOP + 0.06])
    body.add_freejoint(name="bottle")
    body.add_geom(name="bottle", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.025, 0.06], mass=0.03,
                  rgba=[0.3, 0.55, 0.9, 0.9], condim=4, **OBJECT_COLLISION)
    body.add_geom(name="bottle_neck", type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[0.01, 0.025], pos=[0, 0, 0.08],
                  mass=0.005, rgba=[0.3, 0.55, 0.9, 0.9], **OBJECT_COLLISION)


def _add_target(spec: mujoco.MjSpec) -> None:
    """A mocap marker for reaching: visible to cameras, never collides."""
    body = spec.worldbody.add_body(name="target", mocap=True, pos=[0.25, 0, 0.1])
    body.add_geom(name="target", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.012], rgba=[0.1, 0.4, 1.0, 0.8],
                  contype=0, conaffinity=0)
