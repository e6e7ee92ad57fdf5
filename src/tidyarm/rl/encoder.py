"""Image input for the pixel learners: uint8 frames -> float tensors, augmentations, the conv encoder.

Every camera's frames (stacked in time on the channel axis) are concatenated on the channel axis too, so
one conv trunk sees all of them in one pass: half the cost of one trunk per camera, and at 16-32 px the
trunk is small enough that sharing it loses little.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def stack_cameras(obs: dict[str, torch.Tensor], cameras: tuple[str, ...]) -> torch.Tensor:
    """(B, C, H, W) float in [0, 1] from uint8 (B, H, W, c) images, the cameras' channels side by side."""
    images = []
    for camera in cameras:
        image = obs[camera]
        if image.dtype != torch.uint8 or image.dim() != 4:
            raise ValueError(f"image {camera!r} has dtype {image.dtype} and shape {tuple(image.shape)}; "
                             "expected uint8 (B, H, W, channels)")
        images.append(image)
    return torch.cat(images, dim=-1).permute(0, 3, 1, 2).float().div_(255.0)


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ's augmentation: pad each image by repeating its edge pixels, then crop back at a random integer
    offset of up to `pad` pixels, drawn per sample (the same offset for all channels of a sample)."""
    if pad == 0:
        return images
    batch, channels, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), device=images.device)
    rows = (offsets[:, 0, None] + torch.arange(height, device=images.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (offsets[:, 1, None] + torch.arange(width, device=images.device))[:, None, None, :]  # (B, 1, 1, W)
    samples = torch.arange(batch, device=images.device)[:, None, None, None]
    return padded[samples, torch.arange(channels, device=images.device)[None, :, None, None], rows, cols]


def color_jitter(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Random brightness, contrast and saturation per sample and camera, each factor in 1 +- strength.

    The real arm's camera has its own colour response; Squint lost 91% -> 73% real success without this.
    Channels come in RGB triples (one per camera and stacked frame); frames of one camera share factors
    only by chance, which is harmless and keeps this simple.
    """
    if strength == 0:
        return images
    batch, channels, height, width = images.shape
    rgb = images.reshape(batch, channels // 3, 3, height, width)

    def factor() -> torch.Tensor:
        return 1.0 + strength * (2.0 * torch.rand(batch, channels // 3, 1, 1, 1, device=images.device) - 1.0)

    rgb = rgb * factor()  # brightness
    mean = rgb.mean(dim=(2, 3, 4), keepdim=True)
    rgb = (rgb - mean) * factor() + mean  # contrast
    gray = rgb.mean(dim=2, keepdim=True)
    rgb = (rgb - gray) * factor() + gray  # saturation
    return rgb.clamp(0.0, 1.0).reshape(batch, channels, height, width)


def default_shift_pad(image_size: int) -> int:
    """DrQ shifts 84-px images by up to 4 px (about 5%); keep the same share at other sizes, at least 1 px."""
    return max(1, round(image_size * 4 / 84))


POOLINGS = ("flatten", "keypoints")


class ImageEncoder(nn.Module):
    """3x3 conv trunk with ReLUs -> features (B, repr_dim). Sized to the image: DrQ's four layers (first with
    stride 2) from 64 px up, two layers (first with stride 2) at 32-63 px, two stride-1 layers below 32 px, so
    a 16-px image is not squeezed to nothing.

    pooling "flatten" (DrQ) keeps every activation; "keypoints" is a spatial softmax (Levine et al. 2016):
    each channel becomes the expected (x, y) of its activation map, a sub-pixel position. Where a 2-pixel
    cube is matters more than what the rest of the table looks like, and the features shrink from
    filters * H * W to 2 * filters."""

    def __init__(self, in_channels: int, image_size: int, filters: int = 32, pooling: str = "flatten"):
        super().__init__()
        if image_size < 8:
            raise ValueError(f"image_size = {image_size}: expected at least 8 pixels")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: expected one of {list(POOLINGS)}")
        strides = (2, 1, 1, 1) if image_size >= 64 else (2, 1) if image_size >= 32 else (1, 1)
        layers, channels = [], in_channels
        for stride in strides:
            layers += [nn.Conv2d(channels, filters, kernel_size=3, stride=stride), nn.ReLU()]
            channels = filters
        self.convs = nn.Sequential(*layers)
        self.in_channels, self.image_size, self.pooling = in_channels, image_size, pooling
        with torch.no_grad():
            height, width = self.convs(torch.zeros(1, in_channels, image_size, image_size)).shape[-2:]
        self.repr_dim = filters * (2 if pooling == "keypoints" else height * width)
        # Pixel-centre coordinates in [-1, 1] of the final activation maps, for the spatial softmax.
        self.register_buffer("grid_x", torch.linspace(-1.0, 1.0, width).repeat(height), persistent=False)
        self.register_buffer("grid_y", torch.linspace(-1.0, 1.0, height).repeat_interleave(width), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W) floats in [0, 1] (see `stack_cameras`)."""
        if images.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"images have shape {tuple(images.shape[1:])}; expected "
                             f"{(self.in_channels, self.image_size, self.image_size)} (channels, height, width)")
        maps = self.convs(images - 0.5)
        if self.pooling == "flatten":
            return maps.flatten(1)
        attention = torch.softmax(maps.flatten(2), dim=-1)  # (B, filters, H*W), one distribution per channel
        return torch.cat([attention @ self.grid_x, attention @ self.grid_y], dim=-1)  # (B, 2 * filters)


def feature_trunk(repr_dim: int, feature_dim: int) -> nn.Sequential:
    """DrQ-v2's projection of conv features: Linear -> LayerNorm -> tanh, a bounded, well-scaled input."""
    return nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
