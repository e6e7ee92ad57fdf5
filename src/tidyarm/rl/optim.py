"""Helpers shared by the learners' update steps (SAC, visual SAC, DrQ-v2)."""

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


def select_update(stacked: dict, index: int) -> dict:
    """Update `index` of a learner's stacked (U, B, ...) batch tensors, nested observation dicts included (views)."""
    return {key: select_update(value, index) if isinstance(value, dict) else value[index]
            for key, value in stacked.items()}


def average_metrics(per_update: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Each metric's mean over the updates that reported it, read back from the device in one transfer."""
    history: dict[str, list[torch.Tensor]] = {}
    for metrics in per_update:
        for name, value in metrics.items():
            history.setdefault(name, []).append(value)
    means = torch.stack([torch.stack(values).float().mean() for values in history.values()])
    return dict(zip(history, means.tolist(), strict=True))
