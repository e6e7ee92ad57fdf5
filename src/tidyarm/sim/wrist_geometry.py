"""Where a pixel of the wrist camera looks: the nominal arm model posed by the measured joints.

The wrist camera rides on the gripper, so its pose follows from the joint angles by forward kinematics, to
within the mount's tolerance (the sim randomizes it by 2 mm and 1 degree). A pixel then defines a ray, and an
object resting on the table lies where that ray meets the table plane at the object's centre height. That
turns "where is the cube in the wrist image" into a world position with a few millimetres of error, which a
network asked to regress world positions from images does not learn: it reads the arm's place on its usual
path instead (docs/pixels.md). Pixel coordinates are continuous, (0, 0) the top-left corner of the image
and (size, size) the bottom-right, so pixel i spans [i, i + 1).
"""

from __future__ import annotations

import mujoco
import numpy as np

from tidyarm.sim.control import ArmKinematics
from tidyarm.sim.scene import CUBE_HALF, TABLE_TOP, build_scene

WRIST_CAMERA = "wrist"
RESTING_CUBE_Z = TABLE_TOP + CUBE_HALF  # the nominal cube's centre height on the table


class WristGeometry:
    """Forward kinematics of the nominal arm for the wrist camera's pose and the grasp point (jaw-tip midpoint)."""

    def __init__(self, objects: tuple[str, ...], image_size: int):
        self.objects = tuple(objects)
        self.model = build_scene(self.objects).compile()
        self.data = mujoco.MjData(self.model)
        self.camera = self.model.camera(WRIST_CAMERA).id
        self.tips = (self.model.site("fixed_jaw_tip").id, self.model.site("moving_jaw_tip").id)
        self.joint_adr = ArmKinematics(self.model).qpos_adr
        self.image_size = image_size
        self.focal = (image_size / 2) / np.tan(np.deg2rad(self.model.cam_fovy[self.camera]) / 2)  # px

    def pose(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Camera position (3,), rotation (3, 3) (columns: image right, image up, backwards) and grasp point (3,)."""
        self.data.qpos[self.joint_adr] = joints
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        grasp = 0.5 * (self.data.site_xpos[self.tips[0]] + self.data.site_xpos[self.tips[1]])
        return self.data.cam_xpos[self.camera].copy(), self.data.cam_xmat[self.camera].reshape(3, 3).copy(), grasp

    def project(self, points: np.ndarray, joints: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) of world points (N, 3) seen with joints (N, 6); NaN behind the camera."""
        uv = np.full((len(points), 2), np.nan)
        for i, (point, pose) in enumerate(zip(points, joints, strict=True)):
            position, rotation, _ = self.pose(pose)
            x, y, z = rotation.T @ (point - position)  # the camera looks along its -z axis
            if z < -1e-4:
                uv[i] = self.image_size / 2 + self.focal * x / -z, self.image_size / 2 - self.focal * y / -z
        return uv

    def ray_to_plane(self, uv: np.ndarray, joints: np.ndarray,
                     height: float = RESTING_CUBE_Z) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) where each pixel's ray meets the plane z = height, and the grasp points (N, 3).
        NaN where the ray points level or upwards."""
        hits, grasps = np.full((len(uv), 3), np.nan), np.zeros((len(uv), 3))
        for i, (pixel, pose) in enumerate(zip(uv, joints, strict=True)):
            position, rotation, grasps[i] = self.pose(pose)
            direction = rotation @ np.array([(pixel[0] - self.image_size / 2) / self.focal,
                                             -(pixel[1] - self.image_size / 2) / self.focal, -1.0])
            if direction[2] < -1e-6:
                hits[i] = position + (height - position[2]) / direction[2] * direction
        return hits, grasps
