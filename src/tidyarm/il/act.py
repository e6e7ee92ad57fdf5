"""ACT (Zhao et al. 2023): a transformer encoder-decoder that predicts a chunk of k actions.

Training is a conditional VAE: a small transformer encoder reads [CLS, robot state, the k true actions]
and gives the mean and log-variance of a style latent z; the main encoder reads [z, one token per state
input, one token per camera]; the decoder's k learned queries cross-attend to it and become the chunk.
Loss: L1 on the chunk (padded steps masked) + kl_weight * KL(z || N(0, I)). At inference z = 0 and
every step predicts a fresh chunk; temporal ensembling averages all chunks' predictions for the current
step with weights exp(-m * i), i = 0 for the oldest, which smooths the motion without lagging it much.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
from torch import nn

from tidyarm.il.base import ILPolicy
from tidyarm.il.features import InputSpec


@dataclass(frozen=True)
class ACTConfig:
    """ACT network, CVAE and inference settings, sized to train on one CPU thread in minutes (the paper's
    512-wide, 4+7-layer model is GPU-sized; this one took 0.2 s per batch of 64 on a shared 2-core machine)."""

    chunk_size: int = 20
    """Actions predicted per inference (k): 2 s at 10 Hz."""
    d_model: int = 128
    """Transformer width."""
    n_heads: int = 8
    """Attention heads."""
    ff_dim: int = 512
    """Feed-forward width inside each transformer layer."""
    encoder_layers: int = 2
    """Layers of the observation encoder."""
    decoder_layers: int = 1
    """Layers of the action decoder (ACT's reference code effectively used one)."""
    vae_layers: int = 1
    """Layers of the CVAE encoder over the action chunk (training only)."""
    latent_dim: int = 32
    """Size of the style latent z."""
    kl_weight: float = 10.0
    """Weight of the KL term."""
    dropout: float = 0.1
    """Dropout in every transformer layer."""
    temporal_ensemble: float | None = 0.01
    """m in the ensembling weights exp(-m * i), i = 0 for the oldest chunk (negative m favours the newest);
    None turns ensembling off (then n_action_steps apply)."""
    n_action_steps: int = 1
    """Without ensembling: actions of each chunk executed before predicting again (1 .. chunk_size)."""
    image_feature_dim: int = 64
    """Features per camera from the shared camera encoder (image inputs only)."""

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"chunk_size = {self.chunk_size}, n_action_steps = {self.n_action_steps}: expected "
                             "chunk_size >= 1 and 1 <= n_action_steps <= chunk_size")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model = {self.d_model} is not divisible by n_heads = {self.n_heads}")
        if min(self.encoder_layers, self.decoder_layers, self.vae_layers, self.latent_dim) < 1:
            raise ValueError("encoder_layers, decoder_layers, vae_layers and latent_dim must each be >= 1")


def _encoder(config: ACTConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(config.d_model, config.n_heads, config.ff_dim, config.dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class ACTPolicy(ILPolicy):
    kind = "act"

    def __init__(self, config: ACTConfig, spec: InputSpec, stats: dict[str, dict], relative: bool = False):
        self.horizon = config.chunk_size
        super().__init__(config, spec, stats, config.image_feature_dim, relative)
        d_model, k = config.d_model, config.chunk_size
        self.vector_tokens = nn.ModuleList(nn.Linear(size, d_model) for _, size in spec.vectors)
        self.camera_tokens = nn.ModuleList(nn.Linear(config.image_feature_dim, d_model) for _ in spec.images)
        self.latent_token = nn.Linear(config.latent_dim, d_model)
        n_tokens = 1 + len(spec.vectors) + len(spec.images)
        self.encoder_pos = nn.Parameter(torch.randn(1, n_tokens, d_model) * 0.02)
        self.encoder = _encoder(config, config.encoder_layers)
        self.queries = nn.Parameter(torch.randn(1, k, d_model) * 0.02)
        decoder_layer = nn.TransformerDecoderLayer(d_model, config.n_heads, config.ff_dim, config.dropout,
                                                   batch_first=True)
        self.decoder = nn.TransformerDecoder(decoder_layer, config.decoder_layers)
        self.head = nn.Linear(d_model, spec.action_dim)
        # CVAE encoder: [CLS, first state input, k actions] -> mean and log-variance of z.
        self.vae_cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.vae_state = nn.Linear(spec.vectors[0][1], d_model) if spec.vectors else None
        self.vae_action = nn.Linear(spec.action_dim, d_model)
        self.vae_pos = nn.Parameter(torch.randn(1, 2 + k, d_model) * 0.02)
        self.vae_encoder = _encoder(config, config.vae_layers)
        self.vae_out = nn.Linear(d_model, 2 * config.latent_dim)
        self.chunks: deque[torch.Tensor] = deque(maxlen=k)  # ensembling: recent chunks (dataset units), newest last
        self.queue: deque[torch.Tensor] = deque()

    def latent_stats(self, vectors: list[torch.Tensor], actions: torch.Tensor, is_pad: torch.Tensor):
        """Mean and log-variance (B, latent_dim) of z given the state ((B, 1, size) each) and the chunk (B, k, A)."""
        batch = len(actions)
        tokens = [self.vae_cls.expand(batch, -1, -1)]
        pad = [torch.zeros(batch, 1, dtype=torch.bool)]
        if self.vae_state is not None:
            tokens.append(self.vae_state(vectors[0]))
            pad.append(torch.zeros(batch, 1, dtype=torch.bool))
        tokens.append(self.vae_action(actions))
        pad.append(is_pad)
        sequence = torch.cat(tokens, dim=1)
        sequence = sequence + self.vae_pos[:, : sequence.shape[1]]
        encoded = self.vae_encoder(sequence, src_key_padding_mask=torch.cat(pad, dim=1))
        mean, log_var = self.vae_out(encoded[:, 0]).chunk(2, dim=-1)
        return mean, log_var

    def decode(self, vectors: list[torch.Tensor], cameras: list[torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        """(B, k, A) normalized actions from per-input features of the current frame (each (B, 1, size))."""
        tokens = [self.latent_token(latent)[:, None]]
        tokens += [project(vector) for project, vector in zip(self.vector_tokens, vectors, strict=True)]
        tokens += [project(camera) for project, camera in zip(self.camera_tokens, cameras, strict=True)]
        memory = self.encoder(torch.cat(tokens, dim=1) + self.encoder_pos)
        decoded = self.decoder(self.queries.expand(len(latent), -1, -1), memory)
        return self.head(decoded)

    def _loss(self, batch):
        vectors = [vector[:, -1:] for vector in self.normalized_vectors(batch)]
        cameras = [camera[:, -1:] for camera in self.camera_features(batch)]
        actions, is_pad = batch["action"], batch["action_is_pad"]
        mean, log_var = self.latent_stats(vectors, actions, is_pad)
        latent = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        predicted = self.decode(vectors, cameras, latent)
        mask = (~is_pad).unsqueeze(-1).float()
        l1 = ((predicted - actions).abs() * mask).sum() / (mask.sum() * actions.shape[-1]).clamp_min(1.0)
        kl = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp())).sum(-1).mean()
        loss = l1 + self.config.kl_weight * kl
        return loss, {"l1": l1.item(), "kl": kl.item()}

    def predict_chunk(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(k, A) normalized actions for the last frame of a batch of one, with z = 0."""
        vectors = [vector[:, -1:] for vector in self.normalized_vectors(batch)]
        cameras = [camera[:, -1:] for camera in self.camera_features(batch)]
        return self.decode(vectors, cameras, torch.zeros(1, self.config.latent_dim))[0]

    def reset(self) -> None:
        super().reset()
        self.chunks.clear()
        self.queue.clear()

    def _next_action(self) -> torch.Tensor:
        if self.config.temporal_ensemble is None:
            if not self.queue:
                chunk = self.predict_chunk(self.history_batch())[: self.config.n_action_steps]
                self.queue.extend(self.to_absolute(chunk))
            return self.queue.popleft()
        # Each stored chunk was predicted one step later than the one before it; after appending the new
        # chunk, the chunk at position j (oldest first) predicts the current step at its row len - 1 - j.
        self.chunks.append(self.to_absolute(self.predict_chunk(self.history_batch())))  # absolute: states differ
        count = len(self.chunks)
        predictions = torch.stack([chunk[count - 1 - j] for j, chunk in enumerate(self.chunks)])  # (count, A)
        weights = torch.exp(-self.config.temporal_ensemble * torch.arange(count, dtype=torch.float32))
        return (weights[:, None] * predictions).sum(0) / weights.sum()
