"""DrQ-v2 (Yarats et al. 2021): a deterministic image actor with scheduled exploration noise, a double-Q critic,
and random-shift augmentation; the conv encoder learns from the critic loss only.

Reads top to bottom: config, the agent (act / update), checkpoint state. The image actor is pixel_actor.PixelActor
(deployed as pixel_actor.PixelPolicy); the conv encoder and the augmentation live in encoder.py.

The recipe, as in the paper:
- the actor outputs tanh(mean); acting and the TD target both add Gaussian noise of the scheduled std, clipped
  to +-std_clip (TD3's target smoothing), and clip the action to [-1, 1];
- the std decays linearly from std_start to std_end over std_schedule_updates updates;
- two critics, the target takes their min; no target actor, the target action comes from the online actor;
- the encoder is shared: the critic trains it, the actor sees its features detached. Actor and critic each
  project the conv features with their own Linear -> LayerNorm -> tanh trunk;
- obs and next_obs images are randomly shifted, independently, on every update.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tidyarm.rl.agent_state import pack_agent_state, unpack_agent_state
from tidyarm.rl.encoder import default_shift_pad, feature_trunk, random_shift, stack_cameras
from tidyarm.rl.networks import CriticEnsemble
from tidyarm.rl.optim import adam, average_metrics, frozen, select_update
from tidyarm.rl.pixel_actor import PixelActor, PixelNetConfig, actor_inputs, check_pixel_observation
from tidyarm.sim.env import PROPRIO_SIZE

_BATCH_KEYS = ("obs", "action", "reward", "next_obs", "discount", "terminated")
_NUM_CRITICS = 2  # DrQ-v2's clipped double Q


@dataclasses.dataclass(frozen=True)
class DrQV2Config:
    """Hyperparameters of DrQ-v2. Defaults are the paper's, except the network widths (see PixelNetConfig)."""

    lr: float = 1e-4
    """Adam learning rate of the actor and of the critic (encoder included)."""
    gamma: float = 0.99
    """Per-step discount; an n-step transition carries its own gamma**k."""
    tau: float = 0.01
    """Polyak rate of the target critic (1.0 copies the online critic every update)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    utd_ratio: int = 1
    """Updates per update call (the training loop calls once every update_every env steps)."""
    update_every: int = 2
    """Env steps between update calls (DrQ-v2 updates every second step)."""
    n_step: int = 3
    """Length of the n-step returns the training loop stores (see replay.NStepAccumulator)."""
    learning_starts: int = 4000
    """Env steps with random actions and no updates before learning starts (used by the training loop)."""
    std_start: float = 1.0
    """Exploration std at the first update (noise is added to tanh(mean), so 1.0 spans the action range)."""
    std_end: float = 0.1
    """Exploration std once the schedule is done."""
    std_schedule_updates: int = 100_000
    """Updates over which the std goes linearly from std_start to std_end."""
    std_clip: float = 0.3
    """Exploration and target-smoothing noise is clipped to +-std_clip."""
    shift_pad: int | None = None
    """Random-shift augmentation range in pixels; None scales DrQ's 4 px at 84 px to the image size, 0 = off."""
    bc_warmup_steps: int = 0
    """Gradient steps of behaviour cloning on the demonstrations before RL updates begin (0 = off)."""
    critic_warmup_steps: int = 0
    """Critic-only updates (actor frozen) after the BC warm-up, so the actor starts from a fitted critic."""
    offline_fraction: float = 0.5
    """Share of each batch drawn from the offline (demo) buffer when one is given (used by the training loop)."""
    bc_weight: float = 0.0
    """Behaviour-cloning term on the batch's demonstration rows, scaled by mean |Q| (as in TD3+BC); 0 = off."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr}; expected a finite number > 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma}; expected 0 <= gamma <= 1")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau={self.tau}; expected 0 < tau <= 1")
        for name in ("batch_size", "utd_ratio", "update_every", "n_step", "std_schedule_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 1")
        for name in ("learning_starts", "bc_warmup_steps", "critic_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 0")
        for name in ("std_start", "std_end", "std_clip", "bc_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}={value}; expected a finite number >= 0")
        if self.shift_pad is not None and self.shift_pad < 0:
            raise ValueError(f"shift_pad={self.shift_pad}; expected an integer >= 0 or None")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction={self.offline_fraction}; expected 0 <= offline_fraction <= 1")


# ------------------------------------------------------------------------------------------------------ networks


class PixelCritic(nn.Module):
    """The critic's own Linear -> LayerNorm -> tanh trunk over conv features, then a double-Q ensemble.

    Input: conv features (B, repr_dim), standardized proprioception (B, PROPRIO_SIZE), action (B, A);
    output: Q values (2, B). The conv encoder is not part of it (it is shared with the actor).
    """

    def __init__(self, repr_dim: int, net: PixelNetConfig, action_dim: int):
        super().__init__()
        self.trunk = feature_trunk(repr_dim, net.feature_dim)
        self.ensemble = CriticEnsemble(net.feature_dim + PROPRIO_SIZE, action_dim, tuple(net.hidden_dims),
                                       num_critics=_NUM_CRITICS, layer_norm=False)

    def forward(self, features: torch.Tensor, proprio: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.ensemble(torch.cat([self.trunk(features), proprio], dim=-1), action)


def noisy_action(mean: torch.Tensor, std: float, clip: float) -> torch.Tensor:
    """tanh(mean) plus N(0, std) noise clipped to +-clip, then clipped to [-1, 1].

    The final clip passes gradients straight through: an actor whose tanh(mean) sits near a bound, where the
    noise often pushes past it, still gets the critic's gradient instead of zero.
    """
    action = torch.tanh(mean)
    noisy = action + (torch.randn_like(action) * std).clamp(-clip, clip)
    return noisy + (noisy.clamp(-1.0, 1.0) - noisy).detach()


# --------------------------------------------------------------------------------------------------------- agent


class DrQV2:
    """DrQ-v2 agent: `act` for rollouts, `update_many` for learning (the interface every pixel agent shares).

    Batches are what `replay.ReplayBuffer.sample` / `replay.sample_mixed` return for a Dict observation space:
    obs / next_obs dicts with uint8 camera images (B, H, W, 3 * frame_stack) and float32 "proprio" (B, 21);
    action (B, A), reward (B,) (the n-step return), discount (B,) = gamma**k, terminated (B,) bool and an
    optional "demo" (B,) bool. Random numbers come from torch's global generator.
    """

    def __init__(self, net: PixelNetConfig, action_dim: int, config: DrQV2Config | None = None,
                 state_dim: int | None = None, device: str | torch.device = "cpu"):
        if action_dim < 1:
            raise ValueError(f"action_dim={action_dim}; expected an integer >= 1")
        self.net, self.action_dim = net, int(action_dim)
        self.config = config = config or DrQV2Config()
        # Unused: DrQ-v2's critic sees what the actor sees (images and proprioception), never simulator state.
        self.state_dim = state_dim
        self.device = torch.device(device)
        self.shift_pad = default_shift_pad(net.image_size) if config.shift_pad is None else config.shift_pad
        self.actor = PixelActor(net, self.action_dim, stochastic=False).to(self.device)
        self.encoder = self.actor.encoder  # shared: trained by the critic loss, read detached by the actor
        self.critic = PixelCritic(self.encoder.repr_dim, net, self.action_dim).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        encoder_params = set(self.encoder.parameters())
        actor_params = [param for param in self.actor.parameters() if param not in encoder_params]
        self.actor_optimizer = adam([{"params": actor_params, "lr": config.lr}], self.device)
        self.critic_optimizer = adam([{"params": [*self.encoder.parameters(), *self.critic.parameters()],
                                        "lr": config.lr}], self.device)
        self.num_updates = 0
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    @property
    def exploration_std(self) -> float:
        """Noise std of the current update: linear from std_start to std_end over std_schedule_updates."""
        config = self.config
        progress = min(1.0, self.num_updates / config.std_schedule_updates)
        return config.std_start + (config.std_end - config.std_start) * progress

    def normalize_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        """The actor's proprioception standardization, shared by the critic (one fitted normalizer)."""
        return self.actor.proprio_normalizer(proprio)

    def fit_obs_normalizer(self, proprio: np.ndarray, state: np.ndarray | None = None) -> None:
        """Fit the fixed proprioception standardization from early data; `state` is ignored (no state critic)."""
        with torch.no_grad():
            self.actor.proprio_normalizer.fit(torch.as_tensor(proprio, dtype=torch.float32, device=self.device))

    def act(self, obs: dict, eval_mode: bool) -> np.ndarray:
        """Action (action_dim,) in [-1, 1] for one observation (no batch axis); frames already stacked.

        eval_mode returns the deterministic tanh(mean); otherwise it adds the scheduled, clipped noise.
        """
        check_pixel_observation(obs, self.net, stacked=True)
        with torch.inference_mode():
            mean, _ = self.actor(*actor_inputs(obs, self.net.cameras, self.device, single=True))
            std = self.exploration_std
            action = torch.tanh(mean) if eval_mode else noisy_action(mean, std, self.config.std_clip)
        return action[0].cpu().numpy()

    # -- warm starts ------------------------------------------------------------------------------------------

    def behavior_clone(self, obs: dict[str, np.ndarray], actions: np.ndarray, steps: int, batch_size: int,
                       rng: np.random.Generator) -> float:
        """Fit tanh(actor mean) to demonstrated actions (MSE) on shifted images; returns the last loss.

        Unlike the RL updates this trains the encoder through the actor: before any critic exists, the
        demonstrations are the only signal for the features. It uses its own Adam (fresh per call, over all
        actor weights, encoder included) so the RL optimizers' moment estimates start clean.
        """
        cameras = self.net.cameras
        missing = [key for key in cameras if key not in obs]
        if missing or "proprio" not in obs:
            raise ValueError(f"demo obs has keys {sorted(obs)}; expected cameras {list(cameras)} and 'proprio'")
        actions_all = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.device)
        if actions_all.shape != (len(obs[cameras[0]]), self.action_dim):
            raise ValueError(f"demo actions have shape {tuple(actions_all.shape)}; expected "
                             f"({len(obs[cameras[0]])}, {self.action_dim})")
        keys = [*cameras, "proprio"]
        optimizer = adam([{"params": list(self.actor.parameters()), "lr": self.config.lr}], self.device)
        loss = torch.zeros(())
        for _ in range(steps):
            index = rng.integers(0, len(actions_all), size=batch_size)
            tensors = {key: torch.as_tensor(obs[key][index], device=self.device) for key in keys}
            images = random_shift(stack_cameras(tensors, cameras), self.shift_pad)
            mean, _ = self.actor(images, tensors["proprio"].float())
            loss = (torch.tanh(mean) - actions_all[torch.as_tensor(index, device=self.device)]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return float(loss.detach())

    def update_critic_only(self, sample_fn: Callable[[], dict], num_updates: int) -> None:
        """Critic (and encoder) steps with the actor frozen: evaluate the current (e.g. cloned) policy.

        These steps do not count in num_updates, so the exploration schedule starts when RL updates do.
        """
        for _ in range(num_updates):
            batch = select_update(self._to_tensors([sample_fn()]), 0)
            encoded = self._encode(batch)
            self._critic_step(batch, *encoded, self.exploration_std)
            with torch.no_grad():
                torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)

    # -- learning ---------------------------------------------------------------------------------------------

    def update_many(self, sample_fn: Callable[[], dict], num_updates: int) -> dict[str, float]:
        """`num_updates` critic + actor updates, each on a fresh `sample_fn()` batch; returns mean metrics:
        critic_loss, q_mean, target_q_mean, actor_loss, std (and bc_loss when demo rows are anchored)."""
        if num_updates < 1:
            raise ValueError(f"num_updates={num_updates}; expected an integer >= 1")
        stacked = self._to_tensors([sample_fn() for _ in range(num_updates)])
        return average_metrics([self._update_step(select_update(stacked, index)) for index in range(num_updates)])

    def _to_tensors(self, batches: list[dict]) -> dict:
        """(U, B, ...) tensors from U batches, one numpy stack and one host-to-device copy per array.

        obs / next_obs become dicts of the cameras' uint8 images and float32 proprioception; images stay
        uint8 until `stack_cameras` in the update.
        """
        first = batches[0]
        missing = [key for key in _BATCH_KEYS if key not in first]
        if missing:
            raise ValueError(f"batch is missing {missing}; expected keys {list(_BATCH_KEYS)}")
        if not isinstance(first["obs"], dict):
            raise ValueError("batch obs is a flat array; DrQ-v2 takes dict observations with camera images")
        missing_obs = [key for key in self.net.cameras if key not in first["obs"]]
        if missing_obs or "proprio" not in first["obs"]:
            raise ValueError(f"batch obs has keys {sorted(first['obs'])}; expected cameras "
                             f"{list(self.net.cameras)} and 'proprio'")

        def tensor(arrays: list[np.ndarray], dtype=None) -> torch.Tensor:
            array = np.stack(arrays) if dtype is None else np.stack(arrays).astype(dtype, copy=False)
            return torch.from_numpy(array).to(self.device, non_blocking=True)

        tensors: dict = {}
        for prefix in ("obs", "next_obs"):
            tensors[prefix] = {camera: tensor([batch[prefix][camera] for batch in batches])
                               for camera in self.net.cameras}
            tensors[prefix]["proprio"] = tensor([batch[prefix]["proprio"] for batch in batches], np.float32)
        keys = ["action", "reward", "discount", "terminated"]
        if "demo" in first and self.config.bc_weight > 0:
            keys.append("demo")
        for key in keys:
            tensors[key] = tensor([batch[key] for batch in batches], np.bool_ if key in ("terminated", "demo")
                                  else np.float32)
        return tensors

    def _encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv features of independently shifted obs (with gradients) and next_obs (without) images."""
        cameras = self.net.cameras
        features = self.encoder(random_shift(stack_cameras(batch["obs"], cameras), self.shift_pad))
        with torch.no_grad():
            next_features = self.encoder(random_shift(stack_cameras(batch["next_obs"], cameras), self.shift_pad))
        return features, next_features

    def _update_step(self, batch: dict) -> dict[str, torch.Tensor]:
        std = self.exploration_std
        features, next_features = self._encode(batch)
        metrics = self._critic_step(batch, features, next_features, std)
        # The features from before the critic step, detached: the actor loss never reaches the encoder, and
        # reusing them (rather than calling the actor with detach_encoder=True) saves a second conv pass.
        metrics.update(self._actor_step(batch, features.detach(), std))
        self.num_updates += 1
        with torch.no_grad():
            # target <- target + tau * (online - target), all tensors in one foreach call.
            torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)
        metrics["std"] = torch.tensor(std, device=self.device)
        return metrics

    def _critic_step(self, batch: dict, features: torch.Tensor, next_features: torch.Tensor,
                     std: float) -> dict[str, torch.Tensor]:
        proprio, next_proprio = batch["obs"]["proprio"], batch["next_obs"]["proprio"]
        with torch.no_grad():
            next_mean, _ = self.actor.head_from_features(next_features, next_proprio)
            next_action = noisy_action(next_mean, std, self.config.std_clip)  # TD3's target smoothing
            next_q = self.critic_target(next_features, self.normalize_proprio(next_proprio), next_action)
            # discount is gamma**k for a k-step return; terminal transitions do not bootstrap.
            target_q = batch["reward"] + batch["discount"] * (~batch["terminated"]) * next_q.min(dim=0).values
        q = self.critic(features, self.normalize_proprio(proprio), batch["action"])  # (2, B)
        # Sum of per-critic MSEs: each member gets exactly the gradient it would get trained alone.
        critic_loss = (q - target_q).square().mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        return {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean(), "target_q_mean": target_q.mean()}

    def _actor_step(self, batch: dict, features: torch.Tensor, std: float) -> dict[str, torch.Tensor]:
        proprio = batch["obs"]["proprio"]
        mean, _ = self.actor.head_from_features(features, proprio)  # one forward serves both losses
        action = noisy_action(mean, std, self.config.std_clip)
        with frozen(self.critic):
            q = self.critic(features, self.normalize_proprio(proprio), action).min(dim=0).values
        actor_loss = -q.mean()
        metrics = {}
        demo = batch.get("demo")
        if demo is not None and demo.any():
            # TD3+BC-style anchor: the scale of Q sets the weight, so bc_weight is unitless.
            bc_loss = (torch.tanh(mean[demo]) - batch["action"][demo]).square().mean()
            actor_loss = actor_loss + self.config.bc_weight * q.abs().mean().detach() * bc_loss
            metrics["bc_loss"] = bc_loss.detach()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        return {"actor_loss": actor_loss.detach(), **metrics}

    # -- checkpoint state -------------------------------------------------------------------------------------

    def _modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}  # actor has encoder

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume training as a flat dict of tensors (layout in agent_state.py)."""
        extras = {"num_updates": torch.tensor(self.num_updates, dtype=torch.int64)}
        return pack_agent_state(self._modules(), self._optimizers(), extras)

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from `state_dict()`; raises ValueError naming the first missing or mismatching field."""
        extras = {"num_updates": torch.tensor(0, dtype=torch.int64)}
        unpack_agent_state(tensors, self._modules(), self._optimizers(), extras)
        self.num_updates = int(extras["num_updates"])

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """Actor weights only: load them into PixelActor(net, action_dim, stochastic=False) for a PixelPolicy."""
        return {key: value.detach().clone() for key, value in self.actor.state_dict().items()}
