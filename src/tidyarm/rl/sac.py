"""Soft actor-critic with the RLPD options (critic ensemble, random-subset min target, LayerNorm, high UTD).

Reads top to bottom: config, networks, the agent (act / update), checkpoint state, the deployable policy.

Speed notes (CPU, batch 256, 256-wide layers; bench/sac_speed.py measures them against stable-baselines3):
- CPU float32 GEMMs go through oneDNN (see ONEDNN_MATMUL), about 2x faster than the default BLAS path here;
- each critic layer keeps one stacked weight (num_critics, out, in): one `baddbmm` per layer on GPU;
- the target forward computes only the `num_min_critics` target members it takes the min over;
- the actor loss backpropagates through frozen critic weights, skipping their unused weight gradients;
- fused Adam, one foreach lerp for the target update, and `update_many` converts its batches to tensors once
  and reads the metrics back once.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Bounds of the actor's log standard deviation: wide enough to explore, narrow enough to keep log-probs finite.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_BATCH_KEYS = ("obs", "action", "reward", "next_obs", "discount", "terminated")


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of SAC / RLPD. Defaults are SAC's; `SACConfig.rlpd()` gives the RLPD recipe."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers of the actor and of every critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the log entropy temperature."""
    gamma: float = 0.99
    """Per-step discount; an n-step transition carries its own gamma**k."""
    tau: float = 0.005
    """Polyak rate of the target critics (1.0 copies the online critics every update)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    num_critics: int = 2
    """Size of the critic ensemble (RLPD uses 10)."""
    num_min_critics: int = 2
    """The target takes the min over a random subset of this many target critics (RLPD uses 2)."""
    critic_layer_norm: bool = True
    """LayerNorm after every hidden layer of the critics; keeps Q bounded at high update-to-data ratios."""
    actor_q: str = "min"
    """How the actor reduces the ensemble's Q values: 'min' (SAC) or 'mean' (RLPD)."""
    utd_ratio: int = 1
    """Critic updates per env step (RLPD uses up to 20)."""
    actor_update_every: int = 1
    """The actor and the temperature are updated once every this many critic updates (SERL uses 2)."""
    n_step: int = 1
    """Length of the n-step returns the training loop stores (see replay.NStepAccumulator)."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy: float | None = None
    """Entropy the temperature steers towards; None means -action_dim."""
    learning_starts: int = 5000
    """Env steps with random actions and no updates before learning starts (used by the training loop)."""
    offline_fraction: float = 0.5
    """Share of each batch drawn from the offline (demo) buffer when one is given (used by the training loop)."""

    def __post_init__(self) -> None:
        if not self.hidden_dims or any(int(width) < 1 for width in self.hidden_dims):
            raise ValueError(f"hidden_dims={self.hidden_dims}; expected a non-empty tuple of integers >= 1")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value}; expected a finite number > 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma}; expected 0 <= gamma <= 1")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau={self.tau}; expected 0 < tau <= 1")
        for name in ("batch_size", "num_critics", "utd_ratio", "actor_update_every", "n_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 1")
        if not 1 <= self.num_min_critics <= self.num_critics:
            raise ValueError(f"num_min_critics={self.num_min_critics}; expected 1..num_critics ({self.num_critics})")
        if self.actor_q not in ("min", "mean"):
            raise ValueError(f"actor_q={self.actor_q!r}; expected 'min' or 'mean'")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts={self.learning_starts}; expected an integer >= 0")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction={self.offline_fraction}; expected 0 <= offline_fraction <= 1")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy={self.target_entropy}; expected a finite number or None")

    @classmethod
    def rlpd(cls, **overrides) -> SACConfig:
        """RLPD's recipe (10 critics, min over a random pair, LayerNorm, mean-Q actor, UTD 20), plus overrides."""
        recipe = dict(num_critics=10, num_min_critics=2, critic_layer_norm=True, actor_q="mean", utd_ratio=20)
        return cls(**{**recipe, **overrides})


# ---------------------------------------------------------------------------------------------------- networks

ONEDNN_MATMUL = True
"""Run CPU float32 linear layers through oneDNN instead of PyTorch's default BLAS (set False to compare).

Why: on AVX-512 CPUs where MKL stays on its AVX2 path (measured on an AMD EPYC), oneDNN's fp32 GEMM is about
2x faster for the 256-wide layers SAC uses; results agree to float32 rounding (tests/test_sac.py checks).
"""


@functools.cache
def _onednn_usable() -> bool:
    """Whether this PyTorch build ships the oneDNN linear kernel and it agrees with F.linear."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    # Fixed inputs, not torch.randn: this check must not consume the global random stream.
    x = torch.linspace(-1.0, 1.0, 12).reshape(4, 3)
    weight, bias = torch.linspace(0.5, -0.5, 6).reshape(2, 3), torch.tensor([0.1, -0.2])
    try:
        return bool(torch.allclose(_onednn_gemm(x, weight, bias), F.linear(x, weight, bias), atol=1e-5))
    except RuntimeError:  # a build without the CPU kernel registered
        return False


def _onednn_gemm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b.T (+ bias) for 2-D float32 CPU tensors."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    """F.linear whose forward and backward GEMMs all run in oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_gemm(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        grad_x = _onednn_gemm(grad_out, weight.t()) if needs_x else None  # (B, out) @ (out, in)
        grad_weight = _onednn_gemm(grad_out.t(), x.t()) if needs_weight else None  # (out, B) @ (B, in)
        grad_bias = grad_out.sum(0) if ctx.has_bias and needs_bias else None
        return grad_x, grad_weight, grad_bias


def _onednn_applies(x: torch.Tensor) -> bool:
    return ONEDNN_MATMUL and x.device.type == "cpu" and x.dtype == torch.float32 and _onednn_usable()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear (x @ weight.T + bias), through oneDNN for 2-D float32 CPU inputs when enabled and usable."""
    # oneDNN's fixed cost (~15 us) only pays off on matrix-shaped products, not on batch-1 or 1-output ones.
    if x.dim() == 2 and min(x.shape[0], weight.shape[0]) >= 16 and _onednn_applies(x):
        return _OneDnnLinear.apply(x, weight, bias)
    return F.linear(x, weight, bias)


class Actor(nn.Module):
    """Tanh-squashed diagonal Gaussian policy: obs (B, obs_dim) -> action in [-1, 1]^action_dim."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: tuple[int, ...]):
        super().__init__()
        widths = (obs_dim, *hidden_dims)
        self.trunk = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:]))
        self.head = nn.Linear(widths[-1], 2 * action_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the pre-tanh Gaussian, each (B, action_dim)."""
        x = obs
        for layer in self.trunk:
            x = F.relu(linear(x, layer.weight, layer.bias))
        mean, raw_log_std = linear(x, self.head.weight, self.head.bias).chunk(2, dim=-1)
        # A smooth squash into [LOG_STD_MIN, LOG_STD_MAX] instead of a clamp keeps gradients alive at the bounds.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw_log_std) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized action (B, action_dim) and its log-probability (B,) under the squashed Gaussian."""
        mean, log_std = self(obs)
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
    the same and the kernel is about 2x faster than the batched BLAS one (see ONEDNN_MATMUL).
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: tuple[int, ...], num_critics: int,
                 layer_norm: bool):
        super().__init__()
        widths = (obs_dim + action_dim, *hidden_dims, 1)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
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
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            has_norm = self.norm_weights is not None and index < len(self.norm_weights)
            norm = (self.norm_weights[index], self.norm_biases[index]) if has_norm else (None, None)
            layers.append((weight, bias, *norm))
        if members is not None:
            layers = [tuple(None if t is None else t[members] for t in layer) for layer in layers]
        if _onednn_applies(x):
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
                h = linear(h, weight[member], bias[member])  # (B, out)
                if index == len(unbound) - 1:
                    break
                if norm_weight is not None:
                    h = F.layer_norm(h, h.shape[-1:], norm_weight[member], norm_bias[member])
                h = F.relu(h)
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


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Backpropagate through `module` to its inputs without computing gradients for its weights."""
    parameters = list(module.parameters())
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def _adam(parameters, lr: float, device: torch.device) -> torch.optim.Adam:
    # The fused kernel updates every tensor in one call; it exists for CPU and CUDA float32 tensors.
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(parameters, lr=lr, fused=fused, foreach=None if fused else True)


# ------------------------------------------------------------------------------------------------------- agent


class SAC:
    """Soft actor-critic agent: `act` for rollouts, `update` / `update_many` for learning.

    Batches are dicts of numpy arrays with keys obs (B, obs_dim), action (B, action_dim), reward (B,),
    next_obs (B, obs_dim), discount (B,) = gamma**k of the k-step return and terminated (B,) bool; this is
    what `replay.ReplayBuffer.sample` and `replay.sample_mixed` return. Random numbers come from torch's global
    generator, so `torch.manual_seed` makes a run repeatable.
    """

    def __init__(self, obs_dim: int, action_dim: int, config: SACConfig | None = None,
                 device: str | torch.device = "cpu"):
        if obs_dim < 1 or action_dim < 1:
            raise ValueError(f"obs_dim={obs_dim}, action_dim={action_dim}; expected integers >= 1")
        self.config = config = config or SACConfig()
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.device = torch.device(device)
        hidden = tuple(int(width) for width in config.hidden_dims)
        self.actor = Actor(obs_dim, action_dim, hidden).to(self.device)
        self.critic = CriticEnsemble(obs_dim, action_dim, hidden, config.num_critics, config.critic_layer_norm)
        self.critic = self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(config.init_temperature), device=self.device, requires_grad=True)
        self.target_entropy = float(-action_dim if config.target_entropy is None else config.target_entropy)
        self.actor_optimizer = _adam(self.actor.parameters(), config.actor_lr, self.device)
        self.critic_optimizer = _adam(self.critic.parameters(), config.critic_lr, self.device)
        self.alpha_optimizer = _adam([self.log_alpha], config.alpha_lr, self.device)
        self.num_updates = 0
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp())

    def act(self, obs: np.ndarray, eval_mode: bool) -> np.ndarray:
        """Action in [-1, 1] for one obs (obs_dim,) -> (action_dim,) or a batch (B, obs_dim) -> (B, action_dim).

        eval_mode returns the deterministic tanh(mean); otherwise a sample from the policy.
        """
        with torch.inference_mode():
            obs_tensor = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            single = obs_tensor.dim() == 1
            if single:
                obs_tensor = obs_tensor.unsqueeze(0)
            if obs_tensor.dim() != 2 or obs_tensor.shape[1] != self.obs_dim:
                raise ValueError(f"obs shape {tuple(np.shape(obs))}; expected ({self.obs_dim},) or (B, {self.obs_dim})")
            if eval_mode:
                action = torch.tanh(self.actor(obs_tensor)[0])
            else:
                action = self.actor.sample(obs_tensor)[0]
            action = action.cpu().numpy()
        return action[0] if single else action

    # -- learning ---------------------------------------------------------------------------------------------

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step on `batch`, plus an actor and temperature step every `actor_update_every` calls."""
        tensors = self._to_tensors(batch)
        metrics = self._update_step(*(tensors[key] for key in _BATCH_KEYS))
        return {name: float(value) for name, value in metrics.items()}

    def update_many(self, sample_fn: Callable[[], dict[str, np.ndarray]], num_updates: int) -> dict[str, float]:
        """`num_updates` updates (the UTD ratio), each on a fresh `sample_fn()` batch; returns mean metrics."""
        if num_updates < 1:
            raise ValueError(f"num_updates={num_updates}; expected an integer >= 1")
        batches = [sample_fn() for _ in range(num_updates)]
        # One stack and one tensor conversion per key for all updates; each update then slices a view.
        stacked = self._to_tensors({key: np.stack([batch[key] for batch in batches]) for key in _BATCH_KEYS})
        history: dict[str, list[torch.Tensor]] = {}
        for index in range(num_updates):
            metrics = self._update_step(*(stacked[key][index] for key in _BATCH_KEYS))
            for name, value in metrics.items():
                history.setdefault(name, []).append(value)
        means = torch.stack([torch.stack(values).mean() for values in history.values()])
        return dict(zip(history, means.tolist()))  # one device-to-host read for every metric

    def _to_tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        missing = [key for key in _BATCH_KEYS if key not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; expected keys {list(_BATCH_KEYS)}")
        tensors = {}
        for key in _BATCH_KEYS:
            dtype = np.bool_ if key == "terminated" else np.float32
            array = np.ascontiguousarray(batch[key], dtype=dtype)
            tensors[key] = torch.from_numpy(array).to(self.device, non_blocking=True)
        return tensors

    def _update_step(self, obs, action, reward, next_obs, discount, terminated) -> dict[str, torch.Tensor]:
        metrics = self._critic_step(obs, action, reward, next_obs, discount, terminated)
        self.num_updates += 1
        if self.num_updates % self.config.actor_update_every == 0:
            metrics.update(self._actor_and_temperature_step(obs))
        with torch.no_grad():
            # target <- target + tau * (online - target), all tensors in one foreach call.
            torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)
        return metrics

    def _critic_step(self, obs, action, reward, next_obs, discount, terminated) -> dict[str, torch.Tensor]:
        config = self.config
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(next_obs)
            members = None
            if config.num_min_critics < config.num_critics:
                # RLPD: the min over a random subset tames overestimation less pessimistically than all members.
                members = torch.randperm(config.num_critics, device=self.device)[: config.num_min_critics]
            next_q = self.critic_target(next_obs, next_action, members).min(dim=0).values  # (B,)
            soft_value = next_q - self.log_alpha.exp() * next_log_prob
            # discount is gamma**k for a k-step return; terminal transitions do not bootstrap.
            target_q = reward + discount * (~terminated) * soft_value  # (B,)
        q = self.critic(obs, action)  # (num_critics, B)
        # Sum of per-critic MSEs: each member gets exactly the gradient it would get trained alone.
        critic_loss = (q - target_q).square().mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        return {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean(), "target_q_mean": target_q.mean()}

    def _actor_and_temperature_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        action, log_prob = self.actor.sample(obs)
        with _frozen(self.critic):
            q = self.critic(obs, action)  # (num_critics, B)
        q_policy = q.min(dim=0).values if self.config.actor_q == "min" else q.mean(dim=0)
        alpha = self.log_alpha.detach().exp()
        actor_loss = (alpha * log_prob - q_policy).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        entropy = -log_prob.detach().mean()
        alpha_loss = self.log_alpha.exp() * (entropy - self.target_entropy)
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()
        return {"actor_loss": actor_loss.detach(), "alpha_loss": alpha_loss.detach(), "alpha": alpha,
                "entropy": entropy}

    # -- checkpoint state -------------------------------------------------------------------------------------

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer,
                "alpha_optimizer": self.alpha_optimizer}

    def _modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume training, as a flat dict of tensors (ready for safetensors.save_file).

        Keys: `actor.*`, `critic.*`, `critic_target.*` (module weights), `log_alpha`, `num_updates`, and
        `<name>_optimizer.<param index>.<field>` for the Adam moments and step counts. Optimizer hyperparameters
        are not stored: they come from the config the agent is rebuilt with.
        """
        tensors = {}
        for prefix, module in self._modules().items():
            for key, value in module.state_dict().items():
                tensors[f"{prefix}.{key}"] = value.detach().clone()
        tensors["log_alpha"] = self.log_alpha.detach().clone()
        tensors["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        for prefix, optimizer in self._optimizers().items():
            for index, fields in optimizer.state_dict()["state"].items():
                for field, value in fields.items():
                    tensors[f"{prefix}.{index}.{field}"] = torch.as_tensor(value).detach().clone()
        return tensors

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from `state_dict()`; raises ValueError naming the first missing or mismatching field."""
        expected = {f"{prefix}.{key}": value for prefix, module in self._modules().items()
                    for key, value in module.state_dict().items()}
        expected["log_alpha"] = self.log_alpha
        optimizer_keys = {key for key in tensors if key.split(".")[0] in self._optimizers()}
        for key in sorted(set(expected) - set(tensors)):
            raise ValueError(f"state_dict is missing field {key!r}")
        for key in sorted(set(tensors) - set(expected) - optimizer_keys - {"num_updates"}):
            raise ValueError(f"state_dict has unexpected field {key!r}")
        for key, value in expected.items():
            if tuple(tensors[key].shape) != tuple(value.shape):
                raise ValueError(f"state_dict field {key!r} has shape {tuple(tensors[key].shape)}; "
                                 f"expected {tuple(value.shape)}")
        for prefix, module in self._modules().items():
            start = len(prefix) + 1
            module.load_state_dict({key[start:]: value for key, value in tensors.items()
                                    if key.startswith(f"{prefix}.")})
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])
        self.num_updates = int(tensors.get("num_updates", torch.tensor(0)))
        for prefix, optimizer in self._optimizers().items():
            _load_optimizer_state(optimizer, prefix, tensors)

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """Actor weights only: what `Policy.from_state_dict` needs for deployment."""
        return {key: value.detach().clone() for key, value in self.actor.state_dict().items()}


def _load_optimizer_state(optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    """Rebuild an optimizer state dict from `<prefix>.<param index>.<field>` tensors and the live param groups."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head != prefix:
            continue
        index, _, field = rest.partition(".")
        if not index.isdigit() or not field:
            raise ValueError(f"state_dict field {key!r}; expected '{prefix}.<param index>.<field>'")
        state.setdefault(int(index), {})[field] = value.clone()
    current = optimizer.state_dict()
    num_params = sum(len(group["params"]) for group in current["param_groups"])
    for index in state:
        if index >= num_params:
            raise ValueError(f"state_dict has {prefix} state for parameter {index}; the optimizer has {num_params}")
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


# -------------------------------------------------------------------------------------------------- deployment


class Policy(nn.Module):
    """The deployable part of SAC: the actor alone, acting deterministically (tanh of the mean)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: tuple[int, ...]):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.actor = Actor(obs_dim, action_dim, hidden_dims)

    @classmethod
    def from_state_dict(cls, tensors: dict[str, torch.Tensor]) -> Policy:
        """Build from `SAC.policy_state_dict()`; the layer sizes are read from the weight shapes."""
        trunk_weights = sorted((int(key.split(".")[1]), value) for key, value in tensors.items()
                               if key.startswith("trunk.") and key.endswith(".weight"))
        if not trunk_weights or "head.weight" not in tensors:
            raise ValueError(f"policy state dict has fields {sorted(tensors)}; expected trunk.*.weight and head.*")
        hidden_dims = tuple(int(weight.shape[0]) for _, weight in trunk_weights)
        obs_dim = int(trunk_weights[0][1].shape[1])
        policy = cls(obs_dim, int(tensors["head.weight"].shape[0]) // 2, hidden_dims)
        policy.actor.load_state_dict(tensors)
        return policy.eval()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action in [-1, 1] for one obs (obs_dim,) or a batch (B, obs_dim)."""
        with torch.inference_mode():
            obs_tensor = torch.as_tensor(obs, dtype=torch.float32)
            single = obs_tensor.dim() == 1
            action = torch.tanh(self.actor(obs_tensor.reshape(-1, self.obs_dim))[0]).numpy()
        return action[0] if single else action


def scale_action(action: np.ndarray, space: gymnasium.spaces.Box) -> np.ndarray:
    """Map an action in [-1, 1] linearly onto the Box's [low, high] (in the space's dtype)."""
    low, high = _finite_bounds(space)
    scaled = low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)
    return scaled.astype(space.dtype, copy=False)


def unscale_action(action: np.ndarray, space: gymnasium.spaces.Box) -> np.ndarray:
    """Inverse of `scale_action`: an env action (e.g. from a demonstration) mapped into [-1, 1] as float32."""
    low, high = _finite_bounds(space)
    return (2.0 * (np.asarray(action, dtype=np.float64) - low) / (high - low) - 1.0).astype(np.float32)


def _finite_bounds(space: gymnasium.spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(space, gymnasium.spaces.Box):
        raise ValueError(f"action space is {type(space).__name__}; expected gymnasium.spaces.Box")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise ValueError(f"action space bounds low={space.low}, high={space.high}; expected finite with high > low")
    return low, high
