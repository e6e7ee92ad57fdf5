"""Diffusion Policy (Chi et al. 2023): denoise a chunk of actions conditioned on the last observations.

Training: take the actions at t-1 .. t+14 (horizon 16 with 2 observation steps), min-max normalized to
[-1, 1], noise them to a random DDPM step and regress the noise (MSE). Acting: DDIM from pure noise in a
few steps, conditioned on the last 2 frames, then execute 4 of the 16 actions (those from the current step
on) before sampling again. An exponential moving average of the weights is what acts and what is exported.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from tidyarm.il.base import ILPolicy
from tidyarm.il.ddim import NoiseSchedule
from tidyarm.il.features import InputSpec
from tidyarm.il.transformer_denoiser import TransformerDenoiser
from tidyarm.il.unet1d import ConditionalUnet1D

DENOISERS = ("unet", "transformer")


@dataclass(frozen=True)
class DiffusionConfig:
    """Diffusion Policy horizons, denoiser and sampler (network sizes chosen for a CPU)."""

    SAVED_BEFORE: ClassVar[dict] = {"denoiser": "unet"}  # policies saved before the transformer existed

    n_obs_steps: int = 2
    """Observation frames the denoiser is conditioned on."""
    horizon: int = 16
    """Actions denoised per sample (with the U-Net: divisible by 2^(levels - 1))."""
    n_action_steps: int = 4
    """Actions executed per sample, starting at the current step (the paper's 8 scored 36% on place against 48%
    for 4 and 42% for 2, one 30k-step checkpoint, 100 episodes each)."""
    denoiser: str = "transformer"
    """transformer (action tokens cross-attending to the observation) or unet (1-D conv U-Net with FiLM); on
    place at 30k steps the transformer scored 92% without dropout (3 training seeds, 100 episodes each), the U-Net
    61% (one)."""
    down_dims: tuple[int, ...] = (64, 128, 256)
    """Channel widths of the U-Net levels (the paper's 256/512/1024 is GPU-sized)."""
    kernel_size: int = 5
    """Temporal convolution kernel."""
    groups: int = 8
    """GroupNorm groups."""
    step_embed_dim: int = 128
    """Size of the U-Net's diffusion-step embedding."""
    transformer_width: int = 128
    """Transformer denoiser: token width."""
    transformer_layers: int = 4
    """Transformer denoiser: decoder layers."""
    transformer_heads: int = 4
    """Transformer denoiser: attention heads."""
    transformer_dropout: float = 0.0
    """Transformer denoiser: dropout in every layer (on place, 30k steps, training seed 0: 0.0 scored 92%, 0.1 80%,
    0.3 55%)."""
    transformer_cond_layers: int = 0
    """Transformer denoiser: encoder layers over the condition tokens (0: a linear projection per frame)."""
    transformer_causal: bool = False
    """Transformer denoiser: causal attention (action i reads actions <= i and frames up to its time)."""
    train_steps: int = 100
    """DDPM noise levels in training."""
    inference_steps: int = 10
    """DDIM denoising steps when acting."""
    ema_power: float = 0.75
    """EMA decay = 1 - (1 + step)^-power (capped by ema_max): averages more as training settles."""
    ema_max: float = 0.9999
    """Largest EMA decay."""
    image_feature_dim: int = 64
    """Features per camera from the shared camera encoder (image inputs only)."""

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1 or not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ValueError(f"n_obs_steps = {self.n_obs_steps}, horizon = {self.horizon}, n_action_steps = "
                             f"{self.n_action_steps}: expected n_obs_steps >= 1 and 1 <= n_action_steps <= "
                             "horizon - n_obs_steps + 1")
        if self.denoiser not in DENOISERS:
            raise ValueError(f"denoiser = {self.denoiser!r}: expected one of {list(DENOISERS)}")
        if self.transformer_cond_layers < 0:
            raise ValueError(f"transformer_cond_layers = {self.transformer_cond_layers}: expected 0 or more")
        if self.denoiser == "transformer" and self.transformer_width % self.transformer_heads:
            raise ValueError(f"transformer_width = {self.transformer_width} is not divisible by "
                             f"transformer_heads = {self.transformer_heads}")
        if self.denoiser == "unet" and self.horizon % 2 ** (len(self.down_dims) - 1):
            raise ValueError(f"horizon = {self.horizon} is not divisible by 2^{len(self.down_dims) - 1} "
                             f"(down_dims {self.down_dims})")
        if self.denoiser == "unet" and min(self.down_dims) % self.groups:
            raise ValueError(f"down_dims {self.down_dims} must be multiples of groups = {self.groups}")


def _denoiser(config: DiffusionConfig, action_dim: int, frame_dim: int) -> nn.Module:
    if config.denoiser == "transformer":
        return TransformerDenoiser(action_dim, config.horizon, config.n_obs_steps, frame_dim, config.transformer_width,
                                   config.transformer_layers, config.transformer_heads, config.transformer_dropout,
                                   config.transformer_cond_layers, config.transformer_causal)
    return ConditionalUnet1D(action_dim, config.n_obs_steps * frame_dim, config.down_dims, config.kernel_size,
                             config.groups, config.step_embed_dim)


class DiffusionPolicy(ILPolicy):
    kind = "diffusion"
    action_norm_mode = "min_max"

    def __init__(self, config: DiffusionConfig, spec: InputSpec, stats: dict[str, dict], relative: bool = False):
        self.n_obs_steps, self.horizon = config.n_obs_steps, config.horizon
        self.action_offset = 1 - config.n_obs_steps  # the chunk starts at the oldest observed frame
        super().__init__(config, spec, stats, config.image_feature_dim, relative)
        self.denoiser = _denoiser(config, spec.action_dim, self.frame_dim)
        self.schedule = NoiseSchedule(config.train_steps)
        self.queue: deque[torch.Tensor] = deque()
        self.ema: dict[str, torch.Tensor] = {}
        self.ema_updates = 0

    def condition(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.frame_features(batch).flatten(1)  # (B, n_obs * frame_dim)

    def _loss(self, batch):
        actions, is_pad = batch["action"], batch["action_is_pad"]
        noise = torch.randn_like(actions)
        steps = torch.randint(0, self.schedule.train_steps, (len(actions),))
        predicted = self.denoiser(self.schedule.add_noise(actions, noise, steps), steps, self.condition(batch))
        mask = (~is_pad).unsqueeze(-1).float()
        loss = (((predicted - noise) ** 2) * mask).sum() / (mask.sum() * actions.shape[-1]).clamp_min(1.0)
        return loss, {"mse": loss.item()}

    @torch.no_grad()
    def after_step(self) -> None:
        decay = min(self.config.ema_max, 1.0 - (1.0 + self.ema_updates) ** -self.config.ema_power)
        for name, value in self.state_dict().items():
            if not value.is_floating_point():
                continue
            if name not in self.ema:
                self.ema[name] = value.detach().clone()
            else:
                self.ema[name].lerp_(value, 1.0 - decay)
        self.ema_updates += 1

    def deployable(self) -> DiffusionPolicy:
        """A copy that holds the EMA weights (what acts and is exported); itself if no step was taken."""
        if not self.ema:
            return self
        policy = copy.deepcopy(self)
        policy.load_state_dict({**policy.state_dict(), **self.ema})
        policy.ema = {}
        return policy

    def reset(self) -> None:
        super().reset()
        self.queue.clear()

    def _next_action(self) -> torch.Tensor:
        if not self.queue:
            cond = self.condition(self.history_batch())
            shape = (1, self.horizon, self.spec.action_dim)
            chunk = self.schedule.sample(lambda x, t: self.denoiser(x, t, cond), shape, self.config.inference_steps)[0]
            first = self.n_obs_steps - 1  # the chunk's row for the current step
            self.queue.extend(self.to_absolute(chunk[first: first + self.config.n_action_steps]))
        return self.queue.popleft()
