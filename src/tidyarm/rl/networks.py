"""SAC's networks: a tanh-squashed Gaussian actor and a critic ensemble with stacked weights."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tidyarm.rl.fast_linear import linear, onednn_applies

# Bounds of the actor's log standard deviation: wide enough to explore, narrow enough to keep log-probs finite.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class ObsNormalizer(nn.Module):
    """Fixed per-feature standardization, (obs - mean) / std clipped to +-10, fitted once from early data.

    State vectors mix metres (a 2 cm error is 0.02) with radians and rad/s; standardizing lets the networks
    see task-relevant differences at a usable scale. The statistics are buffers, so they travel with the
    policy's weights. `min_std` keeps near-constant features (e.g. a resting cube's tilt) from being blown up.
    """

    def __init__(self, obs_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))

    def fit(self, observations: torch.Tensor, min_std: float = 0.05) -> None:
        self.mean.copy_(observations.mean(dim=0))
        self.std.copy_(observations.std(dim=0).clamp_min(min_std))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.mean) / self.std).clamp(-10.0, 10.0)


class Actor(nn.Module):
    """Tanh-squashed diagonal Gaussian policy: obs (B, obs_dim) -> action in [-1, 1]^action_dim."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: tuple[int, ...]):
        super().__init__()
        self.normalizer = ObsNormalizer(obs_dim)
        widths = (obs_dim, *hidden_dims)
        self.trunk = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True))
        self.head = nn.Linear(widths[-1], 2 * action_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the pre-tanh Gaussian, each (B, action_dim), for raw observations."""
        x = self.normalizer(obs)
        for layer in self.trunk:
            x = linear(x, layer.weight, layer.bias, relu=True)
        mean, raw_log_std = linear(x, self.head.weight, self.head.bias).chunk(2, dim=-1)
        # A smooth squash into [LOG_STD_MIN, LOG_STD_MAX] instead of a clamp keeps gradients alive at the bounds.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw_log_std) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized action (B, action_dim) and its log-probability (B,) under the squashed Gaussian."""
        return squashed_sample(*self(obs))


def squashed_sample(mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh of a reparameterized Gaussian sample, and its log-probability (B,) with the tanh correction."""
    noise = torch.randn_like(mean)
    pre_tanh = mean + log_std.exp() * noise
    gaussian_log_prob = (-0.5 * noise.square() - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * mean.shape[-1]
    # log(1 - tanh(u)^2) written as 2 * (log 2 - u - softplus(-2u)): exact and stable for large |u|.
    squash_correction = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
    return torch.tanh(pre_tanh), gaussian_log_prob - squash_correction


class CriticEnsemble(nn.Module):
    """`num_critics` Q-networks Q(obs, action) with stacked weights; forward returns (members, B).

    Each layer's weight is one tensor (num_critics, out, in), so on GPU a layer is one `baddbmm` whatever the
    ensemble size. On CPU the members run one after another through oneDNN GEMMs instead: the arithmetic is
    the same and the kernel is about 2x faster than the batched BLAS one (see fast_linear.py).
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: tuple[int, ...], num_critics: int,
                 layer_norm: bool):
        super().__init__()
        widths = (obs_dim + action_dim, *hidden_dims, 1)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialization, for every member
            self.weights.append(nn.Parameter(torch.empty(num_critics, fan_out, fan_in).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num_critics, fan_out).uniform_(-bound, bound)))
        self.norm_weights = self.norm_biases = None
        if layer_norm:  # a LayerNorm (with its own gain and bias per member) after every hidden layer
            self.norm_weights = nn.ParameterList(torch.ones(num_critics, width) for width in hidden_dims)
            self.norm_biases = nn.ParameterList(torch.zeros(num_critics, width) for width in hidden_dims)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Q values (num_critics, B), or (len(members), B) for the members picked by index."""
        x = torch.cat([obs, action], dim=-1)  # (B, obs_dim + action_dim), shared by every member
        layers = []  # per layer: (weight (M, out, in), bias (M, out), norm weight (M, out) or None, norm bias)
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            has_norm = self.norm_weights is not None and index < len(self.norm_weights)
            norm = (self.norm_weights[index], self.norm_biases[index]) if has_norm else (None, None)
            layers.append((weight, bias, *norm))
        if members is not None:
            layers = [tuple(None if t is None else t[members] for t in layer) for layer in layers]
        if onednn_applies(x):
            return self._forward_member_by_member(x, layers)
        return self._forward_batched(x, layers)

    @staticmethod
    def _forward_member_by_member(x: torch.Tensor, layers: list[tuple]) -> torch.Tensor:
        # Unbind each stacked tensor once, so autograd gathers all members' gradients in one stack.
        unbound = [[t.unbind(0) if t is not None else None for t in layer] for layer in layers]
        num_members = len(unbound[0][0])
        q_values = []
        for member in range(num_members):
            h = x
            for index, (weight, bias, norm_weight, norm_bias) in enumerate(unbound):
                hidden = index < len(unbound) - 1
                if hidden and norm_weight is None:
                    h = linear(h, weight[member], bias[member], relu=True)  # (B, out)
                    continue
                h = linear(h, weight[member], bias[member])
                if hidden:
                    h = F.relu(F.layer_norm(h, h.shape[-1:], norm_weight[member], norm_bias[member]))
            q_values.append(h.squeeze(-1))
        return torch.stack(q_values)  # (M, B)

    @staticmethod
    def _forward_batched(x: torch.Tensor, layers: list[tuple]) -> torch.Tensor:
        h = x.expand(layers[0][0].shape[0], *x.shape)  # (M, B, in) without a copy
        for index, (weight, bias, norm_weight, norm_bias) in enumerate(layers):
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))  # (M, B, out)
            if index == len(layers) - 1:
                break
            if norm_weight is not None:
                h = torch.addcmul(norm_bias.unsqueeze(1), F.layer_norm(h, h.shape[-1:]), norm_weight.unsqueeze(1))
            h = F.relu(h)
        return h.squeeze(-1)  # (M, B)
