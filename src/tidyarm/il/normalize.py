"""Input and output normalization for imitation policies, with LeRobot's two modes.

MEAN_STD (x - mean) / std for joint states and object poses; MIN_MAX maps [min, max] to [-1, 1], which a
diffusion policy needs because its samples are clipped to [-1, 1]. Images are not normalized here (the
encoder divides uint8 by 255). The stats come from the training dataset and travel in policy.json, so a
loaded policy normalizes exactly as it did in training.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MODES = ("mean_std", "min_max")
EPS = 1e-6  # floor on std and range: a joint that never moves in the demos must not divide by zero


def compute_stats(values: np.ndarray) -> dict[str, list[float]]:
    """Per-dimension mean, std, min, max over the rows of a (frames, dim) array."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if len(values) == 0:
        raise ValueError("cannot compute normalization stats over zero frames")
    return {"mean": values.mean(0).tolist(), "std": values.std(0).tolist(),
            "min": values.min(0).tolist(), "max": values.max(0).tolist()}


class Normalizer(nn.Module):
    """Normalize (and unnormalize) one 1-D feature; stats are buffers, so they move with .to(device)."""

    def __init__(self, stats: dict[str, list[float]], mode: str):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"normalization mode {mode!r}: expected one of {list(MODES)}")
        missing = [key for key in ("mean", "std", "min", "max") if key not in stats]
        if missing:
            raise ValueError(f"normalization stats lack {missing}")
        self.mode = mode
        if mode == "mean_std":
            shift = torch.tensor(stats["mean"], dtype=torch.float32)
            scale = torch.tensor(stats["std"], dtype=torch.float32).clamp_min(EPS)
        else:
            low = torch.tensor(stats["min"], dtype=torch.float32)
            high = torch.tensor(stats["max"], dtype=torch.float32)
            shift, scale = (high + low) / 2, ((high - low) / 2).clamp_min(EPS)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)

    @property
    def dim(self) -> int:
        return self.shift.shape[0]

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.shift) / self.scale

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.scale + self.shift
