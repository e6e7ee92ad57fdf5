"""An image student that estimates what its state teacher reads, then lets the teacher act on the estimate.

The student's cameras and proprioception go through the pixel encoder to a prediction of the task's
privileged features (object and goal positions, the cube-to-gripper vector, the cube's yaw against the jaw);
those fill the teacher's state vector beside the real proprioception, and the teacher's own actor (frozen)
turns it into an action. This is the adaptation-module idea of RMA (Kumar et al., 2021) applied to
teacher-student distillation: instead of relearning the teacher's control law from its actions, the student
learns only the perception the teacher was given for free, which is a plain regression with a dense
target at every frame.

Orientations as quaternions are not estimated: a symmetric cube makes them ambiguous from pixels, and the
teacher was measured not to need them (pretrained:lift with the cube's quaternion pinned to identity: 48/50
against 43/50 with the true one); they are held at `quat_value`, while the yaw relative to the jaw, which the
grasp does depend on, is estimated.
"""

from __future__ import annotations

import torch
from torch import nn

from tidyarm.rl.cube_locator import CubeLocator
from tidyarm.rl.encoder import ImageEncoder, feature_trunk
from tidyarm.rl.networks import Actor, ObsNormalizer
from tidyarm.rl.pixel_actor import PixelNetConfig
from tidyarm.sim.env import PROPRIO_SIZE

IDENTITY_QUAT = (1.0, 0.0, 0.0, 0.0)


def estimated_features(state_layout: dict[str, slice]) -> list[int]:
    """Indices of the state vector the student estimates: every task feature except *_quat."""
    return [index for name, part in state_layout.items() if part.start >= PROPRIO_SIZE and not name.endswith("_quat")
            for index in range(part.start, part.stop)]


def state_template(state_layout: dict[str, slice]) -> torch.Tensor:
    """The state vector's values for what is not estimated: zeros, with every *_quat at the identity rotation."""
    template = torch.zeros(max(part.stop for part in state_layout.values()))
    for name, part in state_layout.items():
        if name.endswith("_quat"):
            template[part] = torch.tensor(IDENTITY_QUAT)
    return template


class EstimatorStudent(nn.Module):
    """Images + proprio -> estimated task features -> the frozen teacher actor -> (mean, None) of its action.

    Same call signature and `net` attribute as PixelActor, so PixelPolicy deploys it unchanged. With a
    `locator`, the cube's position while it rests comes from the wrist camera's geometry instead (when acting).
    """

    def __init__(self, net: PixelNetConfig, teacher: Actor, estimated: list[int], template: torch.Tensor,
                 locator: CubeLocator | None = None):
        super().__init__()
        self.net, self.stochastic = net, False
        self.action_dim = teacher.head.out_features // 2
        self.encoder = ImageEncoder(net.in_channels, net.image_size, net.filters, net.pooling)
        self.trunk = feature_trunk(self.encoder.repr_dim, net.feature_dim)
        self.proprio_normalizer = ObsNormalizer(PROPRIO_SIZE)
        widths = (net.feature_dim + PROPRIO_SIZE, *net.hidden_dims)
        layers = [layer for i, o in zip(widths[:-1], widths[1:], strict=True) for layer in (nn.Linear(i, o), nn.ReLU())]
        self.estimator = nn.Sequential(*layers, nn.Linear(widths[-1], len(estimated)))
        # Predictions are standardized task features; these statistics turn them back into state units.
        self.feature_normalizer = ObsNormalizer(len(estimated))
        self.register_buffer("estimated_index", torch.tensor(estimated, dtype=torch.long))
        self.register_buffer("template", template.clone())
        self.teacher = teacher.requires_grad_(False)
        self.locator = locator
        wrist = 3 * net.frame_stack * (net.cameras.index("wrist") + 1) if locator else None
        self.wrist_channels = slice(wrist - 3, wrist) if wrist else None  # the newest wrist frame of the stack

    def describe(self) -> dict:
        """What `from_description` needs to rebuild this module before loading its weights (policy.json)."""
        hidden = [layer.out_features for layer in self.teacher.trunk]
        description = {"kind": "estimator", "state_dim": self.template.shape[0], "teacher_hidden_dims": hidden,
                       "estimated": self.estimated_index.tolist()}
        if self.locator is not None:
            description["locator"] = self.locator.describe()
        return description

    @classmethod
    def from_description(cls, net: PixelNetConfig, action_dim: int, description: dict) -> EstimatorStudent:
        state_dim = int(description["state_dim"])
        teacher = Actor(state_dim, action_dim, tuple(description["teacher_hidden_dims"]))
        locator = CubeLocator.from_description(net.image_size, description["locator"]) \
            if "locator" in description else None
        return cls(net, teacher, list(description["estimated"]), torch.zeros(state_dim), locator)

    def reset_episode(self) -> None:
        """Forget what the last episode located (call before every episode)."""
        if self.locator is not None:
            self.locator.reset()

    def estimate(self, images: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """Standardized task features (B, len(estimated)) from images (B, C, H, W) in [0, 1] and raw proprio."""
        features = self.trunk(self.encoder(images))
        return self.estimator(torch.cat([features, self.proprio_normalizer(proprio)], dim=-1))

    def teacher_state(self, standardized: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """The teacher's state vector with the estimate filled in (B, state_dim)."""
        state = self.template.expand(proprio.shape[0], -1).clone()
        state[:, :PROPRIO_SIZE] = proprio
        feature_mean, feature_std = self.feature_normalizer.mean, self.feature_normalizer.std
        state[:, self.estimated_index] = standardized * feature_std + feature_mean
        return state

    def forward(self, images: torch.Tensor, proprio: torch.Tensor):
        state = self.teacher_state(self.estimate(images, proprio), proprio)
        if self.locator is not None and not self.training:
            state = self.locator.correct(state, images[:, self.wrist_channels], proprio[:, :6])
        mean, _ = self.teacher(state)
        return mean, None
