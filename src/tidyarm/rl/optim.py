"""Optimizer helpers shared by the learners (SAC, visual SAC, DrQ-v2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Backpropagate through `module` to its inputs without computing gradients for its weights."""
    parameters = list(module.parameters())
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def adam(param_groups: list[dict], device: torch.device) -> torch.optim.Adam:
    # The fused kernel updates every tensor in one call; it exists for CPU and CUDA float32 tensors.
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(param_groups, fused=fused, foreach=None if fused else True)
