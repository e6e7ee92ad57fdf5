"""A transformer denoiser for Diffusion Policy (Chi et al. 2023, their "time-series diffusion transformer").

The noisy action chunk is a sequence of tokens (one per step, plus a learned position); a transformer
decoder lets them attend to each other and cross-attend to a short memory of condition tokens: the
diffusion step and one token per observation frame. Where the U-Net only scales and shifts its channels
by the condition (FiLM), every action token here can read the observation directly, as ACT's queries do.
"""

from __future__ import annotations

import torch
from torch import nn

from tidyarm.il.unet1d import StepEmbedding


class TransformerDenoiser(nn.Module):
    """epsilon(x_t, t, cond): (B, horizon, A) noisy actions -> (B, horizon, A) predicted noise.

    `cond` is the flattened observation (B, n_obs * frame_dim), as the U-Net takes it; it is cut back into
    one token per frame.
    """

    def __init__(self, action_dim: int, horizon: int, n_obs_steps: int, frame_dim: int, d_model: int = 128,
                 layers: int = 4, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.n_obs_steps = n_obs_steps
        self.step_embedding = StepEmbedding(d_model)
        self.frame_token = nn.Linear(frame_dim, d_model)
        self.memory_pos = nn.Parameter(torch.randn(1, 1 + n_obs_steps, d_model) * 0.02)
        self.action_token = nn.Linear(action_dim, d_model)
        self.action_pos = nn.Parameter(torch.randn(1, horizon, d_model) * 0.02)
        layer = nn.TransformerDecoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, action_dim))

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        frames = cond.reshape(len(cond), self.n_obs_steps, -1)
        memory = torch.cat([self.step_embedding(steps).unsqueeze(1), self.frame_token(frames)], dim=1)
        tokens = self.action_token(noisy) + self.action_pos[:, : noisy.shape[1]]
        return self.head(self.decoder(tokens, memory + self.memory_pos))
