"""The small camera encoder the three imitation policies share.

One conv trunk per camera (rl.encoder.ImageEncoder, sized to the image) pooled by a spatial softmax into
keypoints, then projected to `feature_dim`. Keypoints say where things are, which is what a pick-and-place
policy needs, and keep the features small enough for a CPU; ACT's ResNet feature-map tokens (hundreds per
camera) would not be. Training shifts images by a few pixels (DrQ), the augmentation that matters most
for small demo sets.
"""

from __future__ import annotations

import torch
from torch import nn

from tidyarm.rl.encoder import ImageEncoder, default_shift_pad, feature_trunk, random_shift


class CameraEncoder(nn.Module):
    """uint8 (N, H, W, 3) frames of one camera -> (N, feature_dim) features."""

    def __init__(self, image_shape: tuple[int, int, int], feature_dim: int = 64, filters: int = 32):
        super().__init__()
        height, width, channels = image_shape
        if height != width:
            raise ValueError(f"camera images are {height}x{width}; the encoder expects square images")
        self.convs = ImageEncoder(channels, height, filters=filters, pooling="keypoints")
        self.project = feature_trunk(self.convs.repr_dim, feature_dim)
        self.shift_pad = default_shift_pad(height)
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise ValueError(f"camera images have dtype {images.dtype}; expected uint8")
        pixels = images.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W) in [0, 1]
        if self.training:
            pixels = random_shift(pixels, self.shift_pad)
        return self.project(self.convs(pixels))
