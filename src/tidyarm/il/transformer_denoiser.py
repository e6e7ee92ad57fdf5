"""A transformer denoiser for Diffusion Policy (Chi et al. 2023, their "time-series diffusion transformer").

The noisy action chunk is a sequence of tokens (one per step, plus a learned position); a transformer
decoder lets them attend to each other and cross-attend to a short memory of condition tokens: the
diffusion step and one token per observation frame. Where the U-Net only scales and shifts its channels
by the condition (FiLM), every action token here can read the observation directly, as ACT's queries do.
With `cond_layers` > 0 a transformer encoder first mixes the condition tokens (as ACT encodes its
observation before its queries read it); with 0 each frame token is a linear projection of the frame.
With `causal`, as in the paper's transformer, action token i attends only to action tokens 0..i and to the
frames up to its own time (the step token always): a chunk position cannot read later noisy actions.
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
                 layers: int = 4, heads: int = 4, dropout: float = 0.0, cond_layers: int = 0,
                 causal: bool = False):
        super().__init__()
        self.n_obs_steps = n_obs_steps
        self.step_embedding = StepEmbedding(d_model)
        self.frame_token = nn.Linear(frame_dim, d_model)
        self.memory_pos = nn.Parameter(torch.randn(1, 1 + n_obs_steps, d_model) * 0.02)
        self.cond_encoder = None
        if cond_layers:
            cond_layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True,
                                                    norm_first=True)
            self.cond_encoder = nn.TransformerEncoder(cond_layer, cond_layers, enable_nested_tensor=False)
        self.action_token = nn.Linear(action_dim, d_model)
        self.action_pos = nn.Parameter(torch.randn(1, horizon, d_model) * 0.02)
        layer = nn.TransformerDecoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, action_dim))
        self.causal = causal
        if causal:  # True = may not attend. Chunk position i is the time of frame i (the chunk starts at frame 0).
            position = torch.arange(horizon)
            self.register_buffer("action_mask", position[None, :] > position[:, None], persistent=False)
            frame_time = torch.arange(-1, n_obs_steps)  # -1: the step token, visible to all
            self.register_buffer("memory_mask", frame_time[None, :] > position[:, None], persistent=False)

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        frames = cond.reshape(len(cond), self.n_obs_steps, -1)
        memory = torch.cat([self.step_embedding(steps).unsqueeze(1), self.frame_token(frames)], dim=1)
        memory = memory + self.memory_pos
        if self.cond_encoder is not None:
            memory = self.cond_encoder(memory)
        tokens = self.action_token(noisy) + self.action_pos[:, : noisy.shape[1]]
        if not self.causal:
            return self.head(self.decoder(tokens, memory))
        n = noisy.shape[1]
        return self.head(self.decoder(tokens, memory, tgt_mask=self.action_mask[:n, :n],
                                      memory_mask=self.memory_mask[:n]))
