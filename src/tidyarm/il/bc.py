"""Behaviour cloning: an MLP from the current frame to the next action (or a short chunk of actions).

The baseline the chunked policies are measured against. With chunk > 1 the policy predicts `chunk`
actions and executes the first `n_action_steps` of them before asking again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
from torch import nn

from tidyarm.il.base import ILPolicy
from tidyarm.il.features import InputSpec


@dataclass(frozen=True)
class BCConfig:
    """Behaviour-cloning network and loss."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the MLP."""
    chunk: int = 1
    """Actions predicted per frame (1 = plain BC)."""
    n_action_steps: int = 1
    """Of those, actions executed before the next prediction (1 .. chunk)."""
    dropout: float = 0.1
    """Dropout after each hidden layer (regularizes on small demo sets)."""
    image_feature_dim: int = 64
    """Features per camera from the shared camera encoder (image inputs only)."""

    def __post_init__(self) -> None:
        if self.chunk < 1 or not 1 <= self.n_action_steps <= self.chunk:
            raise ValueError(f"chunk = {self.chunk}, n_action_steps = {self.n_action_steps}: expected "
                             "chunk >= 1 and 1 <= n_action_steps <= chunk")
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ValueError(f"hidden_dims = {self.hidden_dims}: expected positive layer sizes")


class BCPolicy(ILPolicy):
    kind = "bc"

    def __init__(self, config: BCConfig, spec: InputSpec, stats: dict[str, dict], relative: bool = False):
        self.horizon = config.chunk
        super().__init__(config, spec, stats, config.image_feature_dim, relative)
        layers, width = [], self.frame_dim
        for hidden in config.hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, config.chunk * spec.action_dim))
        self.mlp = nn.Sequential(*layers)
        self.queue: deque[torch.Tensor] = deque()

    def predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, chunk, A) normalized actions from the last frame of the batch's inputs."""
        features = self.frame_features(batch)[:, -1]
        return self.mlp(features).reshape(len(features), self.config.chunk, self.spec.action_dim)

    def _loss(self, batch):
        error = (self.predict(batch) - batch["action"]) ** 2
        mask = (~batch["action_is_pad"]).unsqueeze(-1).float()
        loss = (error * mask).sum() / (mask.sum() * error.shape[-1]).clamp_min(1.0)
        return loss, {"mse": loss.item()}

    def reset(self) -> None:
        super().reset()
        self.queue.clear()

    def _next_action(self) -> torch.Tensor:
        if not self.queue:
            chunk = self.predict(self.history_batch())[0]
            self.queue.extend(self.to_absolute(chunk[: self.config.n_action_steps]))
        return self.queue.popleft()
