"""What every imitation policy shares: input normalization, the frame encoder, and the acting interface.

A policy is an nn.Module with
- `loss(batch) -> (loss tensor, {name: float})` on a ChunkSampler batch (inputs (B, n_obs, ...),
  action (B, horizon, A) in dataset units, action_is_pad (B, horizon));
- `select_action(frame) -> np.ndarray`: one frame of features ({name: array}, dataset units) in, one action
  in dataset units out; the policy keeps its own observation history and action queue;
- `reset()`: forget that history at the start of an episode.
Subclasses implement `_loss(batch)` on normalized data and `_next_action()` from `self.history`.

Relative actions (`relative=True`): the networks predict joint targets minus the current joint state,
normalized by the stats of those differences. Absolute targets span the joints' whole range, so the 1-degree
corrections a grasp needs are a few hundredths of a standard deviation; differences make them large enough
to learn. Chunks are turned back into absolute targets (`to_absolute`) as soon as they are predicted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, fields

import numpy as np
import torch
from torch import nn

from tidyarm.il.features import ACTION, STATE, InputSpec
from tidyarm.il.normalize import Normalizer
from tidyarm.il.vision import CameraEncoder


def config_from_dict(cls, values: dict):
    """A config dataclass from policy.json, naming unknown fields instead of a TypeError. Fields the file
    predates take the class's `SAVED_BEFORE` values (what they meant then), not today's defaults."""
    known = {field.name for field in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {sorted(unknown)}; expected {sorted(known)}")
    values = {**getattr(cls, "SAVED_BEFORE", {}), **values}
    return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def _key(name: str) -> str:
    return name.replace(".", "__")  # module names cannot contain dots


class ILPolicy(nn.Module):
    """Base class; see the module docstring for the interface."""

    kind = "base"
    action_norm_mode = "mean_std"
    n_obs_steps = 1  # frames of observation history the network sees
    horizon = 1  # actions predicted per inference
    action_offset = 0  # first predicted action relative to the current frame

    def __init__(self, config, spec: InputSpec, stats: dict[str, dict], image_feature_dim: int = 64,
                 relative: bool = False):
        super().__init__()
        if relative and dict(spec.vectors).get(STATE) != spec.action_dim:
            raise ValueError(f"relative actions need input {STATE!r} of size {spec.action_dim} (the action's); "
                             f"the inputs are {list(spec.names)}")
        self.relative = relative
        normalized = (*(name for name, _ in spec.vectors), ACTION)  # images are scaled by the encoder instead
        missing = [name for name in normalized if name not in stats]
        if missing:
            raise ValueError(f"normalization stats lack feature(s) {missing}")
        self.config, self.spec, self.stats = config, spec, {name: stats[name] for name in normalized}
        self.vector_norms = nn.ModuleDict({_key(name): Normalizer(stats[name], "mean_std") for name, _ in spec.vectors})
        self.action_norm = Normalizer(stats[ACTION], self.action_norm_mode)
        self.cameras = nn.ModuleDict({_key(name): CameraEncoder(shape, image_feature_dim)
                                      for name, shape in spec.images})
        self.vector_dim = sum(size for _, size in spec.vectors)
        self.frame_dim = self.vector_dim + image_feature_dim * len(spec.images)
        self.history: deque[dict[str, torch.Tensor]] = deque(maxlen=self.n_obs_steps)

    # -- encoding -----------------------------------------------------------------------------------
    def normalized_vectors(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each vector input normalized: a list of (B, T, size)."""
        return [self.vector_norms[_key(name)](batch[name].float()) for name, _ in self.spec.vectors]

    def camera_features(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each camera encoded: a list of (B, T, image_feature_dim)."""
        features = []
        for name, shape in self.spec.images:
            images = batch[name]  # (B, T, H, W, 3) uint8
            encoded = self.cameras[_key(name)](images.reshape(-1, *shape))
            features.append(encoded.reshape(*images.shape[:2], -1))
        return features

    def frame_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, frame_dim): normalized vectors and camera features side by side."""
        return torch.cat(self.normalized_vectors(batch) + self.camera_features(batch), dim=-1)

    # -- training -----------------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        actions = batch[ACTION]
        if self.relative:  # relative to the current frame's state, the last of the observation history
            actions = actions - batch[STATE][:, -1:].float()
        return self._loss({**batch, ACTION: self.action_norm(actions)})

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after every optimizer step (diffusion updates its EMA weights here)."""

    def deployable(self) -> ILPolicy:
        """The module that acts and is exported (diffusion: a copy with its averaged weights)."""
        return self

    # -- acting -------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.history.clear()

    @torch.no_grad()
    def select_action(self, frame: dict) -> np.ndarray:
        """One action (dataset units) for one frame of features; refuses frames unlike the training features."""
        self.spec.check_frame(frame)
        tensors = {name: torch.as_tensor(np.asarray(frame[name])) for name in self.spec.names}
        if not self.history:  # at an episode's start the history is the first frame repeated
            self.history.extend([tensors] * self.n_obs_steps)
        else:
            self.history.append(tensors)
        was_training = self.training
        self.eval()
        action = self._next_action()  # (A,) dataset units
        self.train(was_training)
        return action.numpy().astype(np.float32)

    def to_absolute(self, actions: torch.Tensor) -> torch.Tensor:
        """Normalized network output (..., A) -> joint targets in dataset units, relative to the newest frame."""
        actions = self.action_norm.inverse(actions)
        return actions + self.history[-1][STATE].float() if self.relative else actions

    def history_batch(self) -> dict[str, torch.Tensor]:
        """The observation history as a batch of one: {name: (1, n_obs, ...)}."""
        return {name: torch.stack([step[name] for step in self.history])[None] for name in self.spec.names}

    def _next_action(self) -> torch.Tensor:
        """The next action (A,) in dataset units."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What policy.json needs to rebuild this policy (weights aside)."""
        return {"policy": self.kind, "config": asdict(self.config), "inputs": self.spec.to_dict(), "stats": self.stats,
                "relative_actions": self.relative}
