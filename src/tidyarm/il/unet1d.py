"""A 1-D convolutional U-Net over an action sequence, conditioned by FiLM (Chi et al. 2023, Diffusion Policy).

The sequence (B, A, horizon) is convolved along time; every residual block scales and shifts its channels by
an affine map of the condition (the diffusion-step embedding and the observation features), so the
observation steers every layer. Down- and up-sampling halve and double the horizon between levels.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step, then a small MLP."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        frequencies = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
        angles = steps.float()[:, None] * frequencies[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


def conv_block(in_channels: int, out_channels: int, kernel: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel, padding=kernel // 2),
                         nn.GroupNorm(groups, out_channels), nn.Mish())


class FiLMBlock(nn.Module):
    """Two conv blocks; between them the condition scales and shifts every channel; a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.first = conv_block(in_channels, out_channels, kernel, groups)
        self.second = conv_block(out_channels, out_channels, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_channels))
        self.residual = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)  # each (B, out, 1)
        hidden = self.first(x) * scale + shift
        return self.second(hidden) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """epsilon(x_t, t, cond): (B, horizon, A) noisy actions -> (B, horizon, A) predicted noise."""

    def __init__(self, action_dim: int, cond_dim: int, down_dims: tuple[int, ...] = (64, 128, 256),
                 kernel: int = 5, groups: int = 8, step_dim: int = 128):
        super().__init__()
        self.step_embedding = StepEmbedding(step_dim)
        cond_dim = cond_dim + step_dim
        widths = (action_dim, *down_dims)
        self.down = nn.ModuleList()
        for level, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            last = level == len(down_dims) - 1
            self.down.append(nn.ModuleList([
                FiLMBlock(width_in, width_out, cond_dim, kernel, groups),
                FiLMBlock(width_out, width_out, cond_dim, kernel, groups),
                nn.Identity() if last else nn.Conv1d(width_out, width_out, 3, stride=2, padding=1)]))
        self.mid = nn.ModuleList([FiLMBlock(down_dims[-1], down_dims[-1], cond_dim, kernel, groups) for _ in range(2)])
        self.up = nn.ModuleList()
        for width_out, width_in in reversed(list(zip(down_dims[:-1], down_dims[1:], strict=True))):
            self.up.append(nn.ModuleList([
                FiLMBlock(2 * width_in, width_out, cond_dim, kernel, groups),
                FiLMBlock(width_out, width_out, cond_dim, kernel, groups),
                nn.ConvTranspose1d(width_out, width_out, 4, stride=2, padding=1)]))
        self.final = nn.Sequential(conv_block(down_dims[0], down_dims[0], kernel, groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))
        self.levels = len(down_dims)

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        horizon = noisy.shape[1]
        if horizon % 2 ** (self.levels - 1):
            raise ValueError(f"horizon {horizon} is not divisible by {2 ** (self.levels - 1)} "
                             f"({self.levels} U-Net levels halve it {self.levels - 1} times)")
        cond = torch.cat([self.step_embedding(steps), cond], dim=-1)
        x, skips = noisy.transpose(1, 2), []  # (B, A, horizon): convolve along time
        for first, second, downsample in self.down:
            x = second(first(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for block in self.mid:
            x = block(x, cond)
        for first, second, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(second(first(x, cond), cond))
        return self.final(x).transpose(1, 2)
