"""The image policy shared by every pixel route (visual SAC, DrQ-v2, the DAgger student) and its deployment.

PixelActor: camera frames -> conv encoder -> Linear/LayerNorm/tanh trunk, concatenated with standardized
proprioception -> MLP -> the mean (and, for a stochastic actor, the log-std) of a pre-tanh Gaussian.
It sees only what a real arm provides: the cameras and proprioception, never simulator state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tidyarm.rl.encoder import POOLINGS, ImageEncoder, feature_trunk, stack_cameras
from tidyarm.rl.fast_linear import linear
from tidyarm.rl.frame_stack import FrameStacker
from tidyarm.rl.networks import LOG_STD_MAX, LOG_STD_MIN, ObsNormalizer, squashed_sample
from tidyarm.sim.env import CAMERAS, PROPRIO_SIZE


@dataclass(frozen=True)
class PixelNetConfig:
    """What a pixel policy sees and how big its networks are."""

    cameras: tuple[str, ...] = CAMERAS
    """Cameras the policy looks at (wrist, front)."""
    image_size: int = 32
    """Height and width of the images the networks see (8 .. 128)."""
    supersample: int = 4
    """Render at this multiple of image_size and area-average down (4: 128 px rendered for 32 px seen)."""
    frame_stack: int = 1
    """Frames per camera stacked on the channel axis (DrQ-v2 uses 3)."""
    filters: int = 32
    """Channels of every conv layer."""
    pooling: str = "flatten"
    """Conv features as they are (flatten, DrQ) or as the expected (x, y) of each channel (keypoints)."""
    feature_dim: int = 50
    """Width of the LayerNorm/tanh projection of the conv features."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layers of the actor MLP (and of the critics)."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r}: expected one of {list(POOLINGS)}")
        unknown = [camera for camera in self.cameras if camera not in CAMERAS]
        if not self.cameras or unknown:
            raise ValueError(f"cameras {list(self.cameras)}: expected one or more of {list(CAMERAS)}")
        for name, low, high in (("image_size", 8, 128), ("supersample", 1, 16), ("frame_stack", 1, 8),
                                ("filters", 1, 512), ("feature_dim", 1, 4096)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} = {value}: expected an integer in {low} .. {high}")

    @property
    def in_channels(self) -> int:
        return 3 * len(self.cameras) * self.frame_stack

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "cameras": list(self.cameras), "hidden_dims": list(self.hidden_dims)}

    @classmethod
    def from_dict(cls, values: dict) -> PixelNetConfig:
        return cls(**{**values, "cameras": tuple(values["cameras"]), "hidden_dims": tuple(values["hidden_dims"])})


class PixelActor(nn.Module):
    """Images + proprioception -> (mean, log_std or None) of a pre-tanh Gaussian over actions."""

    def __init__(self, net: PixelNetConfig, action_dim: int, stochastic: bool):
        super().__init__()
        self.net, self.action_dim, self.stochastic = net, action_dim, stochastic
        self.encoder = ImageEncoder(net.in_channels, net.image_size, net.filters, net.pooling)
        self.trunk = feature_trunk(self.encoder.repr_dim, net.feature_dim)
        self.proprio_normalizer = ObsNormalizer(PROPRIO_SIZE)
        widths = (net.feature_dim + PROPRIO_SIZE, *net.hidden_dims)
        self.mlp = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True))
        self.head = nn.Linear(widths[-1], (2 if stochastic else 1) * action_dim)

    def reset_episode(self) -> None:
        """Nothing to forget: the actor acts on the current (stacked) frames alone."""

    def forward(self, images: torch.Tensor, proprio: torch.Tensor, detach_encoder: bool = False):
        """images (B, C, H, W) in [0, 1], proprio (B, PROPRIO_SIZE). `detach_encoder` stops gradients at the
        conv features (DrQ-v2 trains the encoder through the critic only)."""
        features = self.encoder(images)
        return self.head_from_features(features.detach() if detach_encoder else features, proprio)

    def head_from_features(self, features: torch.Tensor, proprio: torch.Tensor):
        """From conv features (B, repr_dim): the trunk projection, then the MLP head."""
        return self.head_from_trunk(self.trunk(features), proprio)

    def head_from_trunk(self, projected: torch.Tensor, proprio: torch.Tensor):
        """From the trunk's projected features (B, feature_dim) and raw proprioception: (mean, log_std or None)."""
        x = torch.cat([projected, self.proprio_normalizer(proprio)], dim=-1)
        for layer in self.mlp:
            x = linear(x, layer.weight, layer.bias, relu=True)
        out = linear(x, self.head.weight, self.head.bias)
        if not self.stochastic:
            return out, None
        mean, raw_log_std = out.chunk(2, dim=-1)
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw_log_std) + 1.0)


def actor_inputs(obs: dict, cameras: tuple[str, ...], device: torch.device,
                 single: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """What a PixelActor takes, from a numpy observation dict: images (B, C, H, W) in [0, 1] and proprio (B, 21).
    `single`: one observation without a batch axis (one is added)."""
    def tensor(value, dtype=None) -> torch.Tensor:
        value = torch.as_tensor(np.asarray(value), dtype=dtype, device=device)
        return value[None] if single else value

    images = stack_cameras({camera: tensor(obs[camera]) for camera in cameras}, cameras)
    return images, tensor(obs["proprio"], torch.float32)


def pixel_action(actor: PixelActor, obs: dict, deterministic: bool, device: torch.device) -> np.ndarray:
    """One action (action_dim,) float32 in [-1, 1] for one observation without a batch axis: tanh(mean), or a
    sample of a stochastic actor's squashed Gaussian."""
    with torch.inference_mode():
        mean, log_std = actor(*actor_inputs(obs, actor.net.cameras, device, single=True))
        action = torch.tanh(mean) if deterministic else squashed_sample(mean, log_std)[0]
    return action[0].cpu().numpy().astype(np.float32, copy=False)


def observation_tensors(obs: dict, cameras: tuple[str, ...], device: torch.device) -> dict[str, torch.Tensor]:
    """numpy observation dict (batched) -> tensors on `device`, uint8 images kept uint8 until `stack_cameras`."""
    return {key: torch.as_tensor(value, device=device) for key, value in obs.items()
            if key in cameras or key in ("proprio", "state")}


class PixelPolicy:
    """Deployable image policy: deterministic tanh(mean), with its own frame history (call `reset` per episode)."""

    def __init__(self, actor: PixelActor):
        self.actor = actor.eval()
        self.net = actor.net
        self.stacker = FrameStacker(self.net.cameras, self.net.frame_stack)
        self._started = False

    def reset(self) -> None:
        self._started = False
        self.actor.reset_episode()

    def __call__(self, obs: dict) -> np.ndarray:
        check_pixel_observation(obs, self.net)
        obs = self.stacker.push(obs) if self._started else self.stacker.reset(obs)
        self._started = True
        return pixel_action(self.actor, obs, deterministic=True, device=torch.device("cpu"))


def check_pixel_observation(obs: dict, net: PixelNetConfig, stacked: bool = False) -> None:
    """Refuse an observation the policy was not trained on, naming the key, shape and dtype. `stacked`:
    the images already hold net.frame_stack frames each (inside training); otherwise single frames."""
    if not isinstance(obs, dict):
        raise ValueError(f"a pixel policy takes a dict observation; got {type(obs).__name__}")
    expected = (net.image_size, net.image_size, 3 * (net.frame_stack if stacked else 1))
    for camera in net.cameras:
        image = obs.get(camera)
        if image is None:
            raise ValueError(f"observation has no {camera!r} image (keys {sorted(obs)}); the policy uses "
                             f"cameras {list(net.cameras)}")
        if image.shape != expected or image.dtype != np.uint8:
            raise ValueError(f"image {camera!r} is {image.dtype} {image.shape}; expected uint8 {expected}")
    if "proprio" not in obs:
        raise ValueError(f"observation has no 'proprio' (keys {sorted(obs)})")
