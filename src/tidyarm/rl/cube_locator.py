"""Locate a resting cube from the wrist camera: a keypoint detector plus the camera's geometry.

The detector finds the cube's pixel in the wrist image (a soft-argmax keypoint) and says whether it is in
view. Fully convolutional, it finds the cube wherever it sits in the picture, not only where the teacher's
path put it. `WristGeometry` turns the pixel into the point on the table under it, to a few millimetres
(docs/pixels.md). The cube sits still until grasped, so the locator keeps its last fix while the cube
rests and is out of view.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tidyarm.sim.wrist_geometry import RESTING_CUBE_Z, WristGeometry

LIFTED_Z = RESTING_CUBE_Z + 0.0125
"""A cube centre above this height (m) is off the table: held, and no longer where the table plane says."""


class CubeDetector(nn.Module):
    """(B, 3, S, S) wrist images in [0, 1] -> pixel (B, 2) in [0, S) and an in-view logit (B,).

    One stride-2 layer: the heatmap is S/2 square, and the soft-argmax over it still resolves fractions of
    a pixel; it quarters the cost of the later layers.
    """

    def __init__(self, image_size: int, channels: int = 32):
        super().__init__()
        self.heatmap = nn.Sequential(
            nn.Conv2d(3, channels // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(),  # a wider view at the same cost
            nn.Conv2d(channels, 1, 1))
        cells = (image_size + 1) // 2
        centres = (torch.arange(cells, dtype=torch.float32) + 0.5) * image_size / cells
        self.register_buffer("grid_u", centres.repeat(cells))  # row-major: u varies fastest
        self.register_buffer("grid_v", centres.repeat_interleave(cells))
        self.in_view = nn.Linear(2, 1)  # from how peaked the heatmap is

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.heatmap(images).flatten(1)
        weights = logits.softmax(dim=-1)
        pixel = torch.stack([weights @ self.grid_u, weights @ self.grid_v], dim=-1)
        peak = torch.stack([logits.max(dim=-1).values, logits.logsumexp(dim=-1)], dim=-1)
        return pixel, self.in_view(peak).squeeze(-1)


def detector_loss(pixel: torch.Tensor, in_view_logit: torch.Tensor, target_pixel: torch.Tensor,
                  in_view: torch.Tensor) -> torch.Tensor:
    """L1 pixel error (in pixels) over the frames with the cube in view, plus the in-view classification loss."""
    mask = in_view.float()
    pixel_error = ((pixel - target_pixel.nan_to_num()).abs().sum(-1) * mask).sum() / mask.sum().clamp_min(1.0)
    return pixel_error + F.binary_cross_entropy_with_logits(in_view_logit, mask)


def in_view_labels(geometry: WristGeometry, cube_pos: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training targets from the true cube position (N, 3) and the measured joints (N, 6): the cube's pixel
    (N, 2) and whether it is inside the image (N,). Resting or held does not matter here: the locator asks the
    estimate whether the cube rests (a held cube in view must still count as in view, or the detector cannot
    tell "in view" from its picture)."""
    pixel = geometry.project(cube_pos, joints)
    return pixel, np.all((pixel >= 0) & (pixel < geometry.image_size), axis=1)  # False where NaN


class CubeLocator(nn.Module):
    """The detector, the geometry, and per-env fixes: overwrites an estimated state's cube position and
    cube-to-grasp vector with the located ones while the cube rests on the table."""

    def __init__(self, objects: tuple[str, ...], image_size: int, cube_pos: slice, cube_to_grasp: slice):
        super().__init__()
        self.detector = CubeDetector(image_size)
        self.geometry = WristGeometry(objects, image_size)
        self.cube_pos, self.cube_to_grasp = cube_pos, cube_to_grasp
        self.fixes: np.ndarray | None = None  # (B, 2) last located (x, y) per env; NaN before the first

    def describe(self) -> dict:
        return {"objects": list(self.geometry.objects), "cube_pos": [self.cube_pos.start, self.cube_pos.stop],
                "cube_to_grasp": [self.cube_to_grasp.start, self.cube_to_grasp.stop]}

    @classmethod
    def from_description(cls, image_size: int, description: dict) -> CubeLocator:
        return cls(tuple(description["objects"]), image_size, slice(*description["cube_pos"]),
                   slice(*description["cube_to_grasp"]))

    def reset(self) -> None:
        """Forget the fixes: call at the start of every episode."""
        self.fixes = None

    @torch.no_grad()
    def correct(self, state: torch.Tensor, wrist: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """state (B, state_dim) with the estimate filled in, wrist images (B, 3, S, S), joints (B, 6)."""
        pixel, in_view_logit = self.detector(wrist)
        hits, grasps = self.geometry.ray_to_plane(pixel.numpy(), joints.numpy())
        resting = state[:, self.cube_pos.start + 2].numpy() < LIFTED_Z  # the estimator's own height: held or not
        if self.fixes is None or len(self.fixes) != len(state):
            self.fixes = np.full((len(state), 2), np.nan)
        seen = resting & (in_view_logit.numpy() > 0) & np.isfinite(hits[:, 0])
        self.fixes[seen] = hits[seen, :2]
        use = resting & np.isfinite(self.fixes[:, 0])
        if use.any():
            state, use = state.clone(), torch.as_tensor(use)
            cube = torch.as_tensor(np.column_stack([self.fixes, np.full(len(state), RESTING_CUBE_Z)]),
                                   dtype=state.dtype)
            state[use, self.cube_pos] = cube[use]
            state[use, self.cube_to_grasp] = cube[use] - torch.as_tensor(grasps, dtype=state.dtype)[use]
        return state
