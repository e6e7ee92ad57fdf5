"""Soft actor-critic with the RLPD options (critic ensemble, random-subset min target, LayerNorm, high UTD).

Reads top to bottom: config, the agent (act / update), checkpoint state, the deployable policy; the
networks live in networks.py.

Speed notes (CPU, batch 256, 256-wide layers; bench/sac_speed.py measures them against stable-baselines3):
- CPU float32 GEMMs go through oneDNN (fast_linear.py), about 2x faster than the default BLAS path here;
- each critic layer keeps one stacked weight (num_critics, out, in): one `baddbmm` per layer on GPU;
- the target forward computes only the `num_min_critics` target members it takes the min over;
- the actor loss backpropagates through frozen critic weights, skipping their unused weight gradients;
- fused Adam, one foreach lerp for the target update, and `update_many` converts its batches to tensors once
  and reads the metrics back once.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable

import gymnasium
import numpy as np
import torch
from torch import nn

from tidyarm.rl.agent_state import pack_agent_state, unpack_agent_state
from tidyarm.rl.networks import Actor, CriticEnsemble, squashed_sample
from tidyarm.rl.optim import adam, average_metrics, frozen

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
    update_every: int = 1
    """Env steps between update calls, each doing utd_ratio updates (used by the training loop)."""
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
    normalize_obs: bool = True
    """Standardize observations with statistics fitted once at learning_starts (see networks.ObsNormalizer)."""
    bc_warmup_steps: int = 0
    """Gradient steps of behaviour cloning on the demonstrations before RL updates begin (0 = off)."""
    bc_weight: float = 0.0
    """Behaviour-cloning term on the batch's demonstration rows, scaled by mean |Q| (as in TD3+BC); 0 = pure SAC."""
    critic_warmup_steps: int = 0
    """Critic-only updates (actor frozen) after the BC warm-up, so the actor starts from a fitted critic."""
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
        for name in ("bc_warmup_steps", "critic_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 0")
        for name in ("batch_size", "num_critics", "utd_ratio", "update_every", "actor_update_every", "n_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 1")
        if not 1 <= self.num_min_critics <= self.num_critics:
            raise ValueError(f"num_min_critics={self.num_min_critics}; expected 1..num_critics ({self.num_critics})")
        if self.actor_q not in ("min", "mean"):
            raise ValueError(f"actor_q={self.actor_q!r}; expected 'min' or 'mean'")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts={self.learning_starts}; expected an integer >= 0")
        if not (math.isfinite(self.bc_weight) and self.bc_weight >= 0):
            raise ValueError(f"bc_weight={self.bc_weight}; expected a finite number >= 0")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction={self.offline_fraction}; expected 0 <= offline_fraction <= 1")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy={self.target_entropy}; expected a finite number or None")

    @classmethod
    def rlpd(cls, **overrides) -> SACConfig:
        """RLPD's recipe (10 critics, min over a random pair, LayerNorm, mean-Q actor, UTD 20), plus overrides."""
        recipe = dict(num_critics=10, num_min_critics=2, critic_layer_norm=True, actor_q="mean", utd_ratio=20)
        return cls(**{**recipe, **overrides})


# ------------------------------------------------------------------------------------------ optimization


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
        # One optimizer for the actor and the temperature (own learning rates): their losses share a backward.
        self.actor_optimizer = adam([{"params": list(self.actor.parameters()), "lr": config.actor_lr},
                                      {"params": [self.log_alpha], "lr": config.alpha_lr}], self.device)
        self.critic_optimizer = adam([{"params": list(self.critic.parameters()), "lr": config.critic_lr}],
                                      self.device)
        self.num_updates = 0
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's observation standardization, shared by the critics."""
        return self.actor.normalizer(obs)

    def fit_obs_normalizer(self, observations: np.ndarray) -> None:
        """Fit the (fixed) observation standardization from early data; a no-op unless config.normalize_obs."""
        if self.config.normalize_obs:
            with torch.no_grad():
                self.actor.normalizer.fit(torch.as_tensor(observations, dtype=torch.float32, device=self.device))

    def behavior_clone(self, observations: np.ndarray, actions: np.ndarray, steps: int, batch_size: int,
                       rng: np.random.Generator) -> float:
        """Fit the actor's deterministic action tanh(mean) to demonstrated actions (MSE); returns the last loss.

        A warm start, not a constraint: afterwards SAC is free to improve on the demonstrations.
        """
        obs_all = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        actions_all = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        loss = torch.zeros(())
        for _ in range(steps):
            index = torch.as_tensor(rng.integers(0, len(obs_all), size=batch_size), device=self.device)
            loss = (torch.tanh(self.actor(obs_all[index])[0]) - actions_all[index]).square().mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.actor_optimizer.step()
        return float(loss.detach())

    def update_critic_only(self, sample_fn: Callable[[], dict[str, np.ndarray]], num_updates: int) -> None:
        """Critic steps with the actor and temperature frozen: evaluate the current (e.g. cloned) policy."""
        for _ in range(num_updates):
            batch = self._to_tensors([sample_fn()])
            self._critic_step(*(batch[key][0] for key in _BATCH_KEYS))
            with torch.no_grad():
                torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)

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
            action = torch.tanh(self.actor(obs_tensor)[0]) if eval_mode else self.actor.sample(obs_tensor)[0]
            action = action.cpu().numpy()
        return action[0] if single else action

    # -- learning ---------------------------------------------------------------------------------------------

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step on `batch`, plus an actor and temperature step every `actor_update_every` calls."""
        return self.update_many(lambda: batch, 1)

    def update_many(self, sample_fn: Callable[[], dict[str, np.ndarray]], num_updates: int) -> dict[str, float]:
        """`num_updates` updates (the UTD ratio), each on a fresh `sample_fn()` batch; returns mean metrics.

        Actor metrics are averaged over the updates that stepped the actor, and absent if none did.
        """
        if num_updates < 1:
            raise ValueError(f"num_updates={num_updates}; expected an integer >= 1")
        stacked = self._to_tensors([sample_fn() for _ in range(num_updates)])
        per_update = []
        for index in range(num_updates):
            demo = stacked["demo"][index] if "demo" in stacked else None
            per_update.append(self._update_step(*(stacked[key][index] for key in _BATCH_KEYS), demo))  # views
        return average_metrics(per_update)

    def _to_tensors(self, batches: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """(U, B, ...) tensors from U batches: one numpy stack and one host-to-device copy per key."""
        missing = [key for key in _BATCH_KEYS if key not in batches[0]]
        if missing:
            raise ValueError(f"batch is missing {missing}; expected keys {list(_BATCH_KEYS)}")
        if isinstance(batches[0]["obs"], dict):
            raise ValueError(f"batch obs is a dict with keys {sorted(batches[0]['obs'])}; SAC takes flat vectors")
        tensors = {}
        keys = _BATCH_KEYS + (("demo",) if "demo" in batches[0] and self.config.bc_weight > 0 else ())
        for key in keys:
            dtype = np.bool_ if key in ("terminated", "demo") else np.float32
            array = np.stack([batch[key] for batch in batches]).astype(dtype, copy=False)
            tensors[key] = torch.from_numpy(array).to(self.device, non_blocking=True)
        return tensors

    def _update_step(self, obs, action, reward, next_obs, discount, terminated, demo=None) -> dict[str, torch.Tensor]:
        metrics = self._critic_step(obs, action, reward, next_obs, discount, terminated)
        self.num_updates += 1
        if self.num_updates % self.config.actor_update_every == 0:
            metrics.update(self._actor_and_temperature_step(obs, action, demo))
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
            next_q = self.critic_target(self.normalize(next_obs), next_action, members).min(dim=0).values  # (B,)
            soft_value = next_q - self.log_alpha.exp() * next_log_prob
            # discount is gamma**k for a k-step return; terminal transitions do not bootstrap.
            target_q = reward + discount * (~terminated) * soft_value  # (B,)
        q = self.critic(self.normalize(obs), action)  # (num_critics, B)
        # Sum of per-critic MSEs: each member gets exactly the gradient it would get trained alone.
        critic_loss = (q - target_q).square().mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        return {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean(), "target_q_mean": target_q.mean()}

    def _actor_and_temperature_step(self, obs: torch.Tensor, batch_action: torch.Tensor | None = None,
                                    demo: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mean, log_std = self.actor(obs)  # one forward serves the SAC loss and the BC anchor
        action, log_prob = squashed_sample(mean, log_std)
        with frozen(self.critic):
            q = self.critic(self.normalize(obs), action)  # (num_critics, B)
        q_policy = q.min(dim=0).values if self.config.actor_q == "min" else q.mean(dim=0)
        alpha = self.log_alpha.detach().exp()
        actor_loss = (alpha * log_prob - q_policy).mean()
        metrics = {}
        if demo is not None and demo.any():
            # TD3+BC-style anchor: the scale of Q sets the weight, so bc_weight is unitless.
            deterministic = torch.tanh(mean[demo])
            bc_loss = (deterministic - batch_action[demo]).square().mean()
            actor_loss = actor_loss + self.config.bc_weight * q_policy.abs().mean().detach() * bc_loss
            metrics["bc_loss"] = bc_loss.detach()
        entropy = -log_prob.detach().mean()
        alpha_loss = self.log_alpha.exp() * (entropy - self.target_entropy)
        # Each loss sees the other's variable detached, so one backward gives both exactly their own gradients.
        self.actor_optimizer.zero_grad(set_to_none=True)
        (actor_loss + alpha_loss).backward()
        self.actor_optimizer.step()
        return {"actor_loss": actor_loss.detach(), "alpha_loss": alpha_loss.detach(), "alpha": alpha,
                "entropy": entropy, **metrics}

    # -- checkpoint state -------------------------------------------------------------------------------------

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def _modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume training as a flat dict of tensors (layout in agent_state.py)."""
        return pack_agent_state(self._modules(), self._optimizers(), self._extras())

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from `state_dict()`; raises ValueError naming the first missing or mismatching field."""
        extras = self._extras()
        unpack_agent_state(tensors, self._modules(), self._optimizers(), extras, optional=("num_updates",))
        self.num_updates = int(extras["num_updates"])

    def _extras(self) -> dict[str, torch.Tensor]:
        return {"log_alpha": self.log_alpha, "num_updates": torch.tensor(self.num_updates, dtype=torch.int64)}

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """Actor weights only: what `Policy.from_state_dict` needs for deployment."""
        return {key: value.detach().clone() for key, value in self.actor.state_dict().items()}


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
        try:
            policy.actor.load_state_dict(tensors)
        except RuntimeError as error:  # torch lists missing/unexpected keys and shape mismatches
            raise ValueError(f"policy weights do not fit the actor: {error}") from error
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
