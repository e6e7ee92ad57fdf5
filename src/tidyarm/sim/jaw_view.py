"""The jaw view: a window of the front camera centred on the gripper, at twice the front view's resolution.

Why: at 32 px the front view shows the cube as one or two pixels, and a state teacher needs its cube within
about 1 cm to grasp it (docs/pixels.md). The wrist camera sees the cube only at the edge of its image during
the approach. The jaw view spends the same 32 x 32 pixels on the 25 cm around the gripper instead of the
whole table, so the cube and the jaw sit side by side at 0.8 cm per pixel.

The window is placed by projecting the tool point (forward kinematics, in every observation's proprioception)
through the front camera's nominal, calibrated pose. The randomized pose of an episode's camera differs from
it, as a real camera's does from its calibration, so the gripper is near, not exactly at, the window's centre.
"""

from __future__ import annotations

import numpy as np

from tidyarm.sim.scene import FRONT_CAMERA_FOVY, FRONT_CAMERA_POS, front_camera_axes

JAW_VIEW = "jaw"


def project_to_front(point: np.ndarray, image_side: int) -> tuple[float, float]:
    """(column, row) pixel coordinates of a world point in a square front image of `image_side` pixels."""
    right, up, forward = front_camera_axes()
    offset = np.asarray(point, dtype=float) - np.asarray(FRONT_CAMERA_POS)
    depth = offset @ forward
    if depth <= 0:
        raise ValueError(f"point {list(point)} is behind the front camera")
    focal = (image_side / 2) / np.tan(np.deg2rad(FRONT_CAMERA_FOVY) / 2)
    return image_side / 2 + focal * (offset @ right) / depth, image_side / 2 - focal * (offset @ up) / depth


def jaw_window(front: np.ndarray, tool_pos: np.ndarray, out_size: int) -> np.ndarray:
    """uint8 (out_size, out_size, 3): the half-width window of a square front image around the tool point,
    area-averaged down to out_size. The image's side must be a multiple of 2 * out_size (edges are padded)."""
    side = front.shape[0]
    if front.shape != (side, side, 3) or side % (2 * out_size):
        raise ValueError(f"front image of shape {front.shape}: expected a square (S, S, 3) image with S a "
                         f"multiple of 2 x {out_size} (render the front camera at supersample >= 2, even)")
    window, factor = side // 2, side // (2 * out_size)
    column, row = project_to_front(tool_pos, side)
    # Clamp so a tool point far outside the image still gives a window touching the image's edge.
    left = int(np.clip(round(column) - window // 2, -window, side))
    top = int(np.clip(round(row) - window // 2, -window, side))
    padded = np.pad(front, ((window, window), (window, window), (0, 0)), mode="edge")
    crop = padded[top + window:top + 2 * window, left + window:left + 2 * window]
    blocks = crop.reshape(out_size, factor, out_size, factor, 3).mean(axis=(1, 3), dtype=np.float32)
    return np.round(blocks).astype(np.uint8)
