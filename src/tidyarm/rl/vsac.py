"""Visual SAC at low resolution ("Squint"): SAC on 16-32 px camera images, with the RLPD/SERL options of sac.py.

The actor is a `PixelActor` (conv encoder + MLP, tanh-squashed Gaussian) that sees only what a real arm has:
cameras and proprioception. The critic comes in two modes (`VisualSACConfig.asymmetric_critic`):

- asymmetric (default): the critic sees the privileged simulator state, standardized. The encoder then
  learns through the actor loss, and the critic and its targets never run the conv: cheaper, and the critic
  learns from a clean low-dimensional input.
- symmetric: the critic sees the images, plus its own feature trunk and the standardized proprioception.
  With `critic_encoder="shared"` it reads them through the actor's encoder, which (as in SAC-AE and DrQ)
  learns through the critic loss only, and the actor reads the conv features detached. With
  `critic_encoder="own"` the critic has its own encoder (a copy of the actor's at the start), trained by the
  critic loss, while the actor's encoder keeps learning through the actor loss: what fine-tuning a pretrained
  pixel policy on a robot needs (HIL-SERL), where no privileged state exists and a fresh critic's gradients
  must not scramble the features the policy already acts on. With `critic_encoder="frozen"` no loss trains
  the encoder: actor and critic read the same fixed conv features through their own trainable trunks, as
  HIL-SERL does with its frozen pretrained ResNet. Each update then runs the conv forward only: 1.8x the
  updates/s of "own" in the HIL configuration (bench/pixel_updates.py).

Every update shifts and colour-jitters the images of obs and next_obs with fresh draws (DrQ; the jitter is
Squint's sim-to-real measure). Reads top to bottom: config, the agent (act / update), checkpoint state.
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
from tidyarm.rl.encoder import color_jitter, default_shift_pad, feature_trunk, random_shift, stack_cameras
from tidyarm.rl.networks import CriticEnsemble, ObsNormalizer, squashed_sample
from tidyarm.rl.optim import adam, average_metrics, frozen, select_update
from tidyarm.rl.pixel_actor import PixelActor, PixelNetConfig, check_pixel_observation, pixel_action
from tidyarm.sim.env import PROPRIO_SIZE

_BATCH_KEYS = ("obs", "action", "reward", "next_obs", "discount", "terminated")


CRITIC_ENCODERS = ("shared", "own", "frozen")


@dataclasses.dataclass(frozen=True)
class VisualSACConfig:
    """Hyperparameters of visual SAC; the network sizes live in `PixelNetConfig`."""

    actor_lr: float = 3e-4
    """Adam learning rate of the actor (and, with an asymmetric critic, of the conv encoder)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics (and, with a symmetric critic, of the conv encoder)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the log entropy temperature."""
    gamma: float = 0.97
    """Per-step discount; an n-step transition carries its own gamma**k."""
    tau: float = 0.01
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
    """Gradient updates per update call (the update-to-data ratio when update_every is 1)."""
    update_every: int = 1
    """Env steps between update calls (used by the training loop)."""
    actor_update_every: int = 1
    """The actor and the temperature are updated once every this many critic updates (SERL uses 2)."""
    n_step: int = 3
    """Length of the n-step returns the training loop stores (see replay.NStepAccumulator)."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha."""
    target_entropy: float | None = None
    """Entropy the temperature steers towards; None means -action_dim."""
    learning_starts: int = 1000
    """Env steps with random actions and no updates before learning starts (used by the training loop)."""
    asymmetric_critic: bool = True
    """The critic sees the privileged simulator state (needs state_dim) instead of the images."""
    critic_encoder: str = "shared"
    """Symmetric critic only: 'shared' (the actor's encoder, trained by the critic loss), 'own' (a separate
    encoder for the critic; the actor's encoder learns through the actor loss) or 'frozen' (the actor's encoder,
    trained by neither: fine-tuning a pretrained policy on features it already has)."""
    shift_pad: int | None = None
    """Random-shift augmentation in pixels (0 = off); None scales DrQ's 4 px at 84 px to the image size."""
    color_jitter: float = 0.1
    """Strength of the brightness/contrast/saturation augmentation, factors in 1 +- this (0 = off)."""
    bc_warmup_steps: int = 5000
    """Gradient steps of behaviour cloning on the demonstrations before RL updates begin (0 = off)."""
    critic_warmup_steps: int = 2000
    """Critic-only updates (actor frozen) after the BC warm-up, so the actor starts from a fitted critic."""
    offline_fraction: float = 0.5
    """Share of each batch drawn from the offline (demo) buffer when one is given (used by the training loop)."""
    bc_weight: float = 0.4
    """Behaviour-cloning term on the batch's demonstration rows, scaled by mean |Q| (as in TD3+BC); 0 = pure SAC."""
    anchor_weight: float = 0.0
    """Fine-tuning: pull the actor's mean action toward a frozen copy of the starting actor (`set_anchor`) on
    every row, scaled by mean |Q| like bc_weight; 0 = off. Keeps a pretrained policy's behaviour while the
    fresh critic is still uninformative, and lets it change where the critic's gradient is consistent."""

    def __post_init__(self) -> None:
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value}; expected a finite number > 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma}; expected 0 <= gamma <= 1")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau={self.tau}; expected 0 < tau <= 1")
        for name in ("batch_size", "num_critics", "utd_ratio", "update_every", "actor_update_every", "n_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 1")
        for name in ("learning_starts", "bc_warmup_steps", "critic_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 0")
        if not 1 <= self.num_min_critics <= self.num_critics:
            raise ValueError(f"num_min_critics={self.num_min_critics}; expected 1..num_critics ({self.num_critics})")
        if self.critic_encoder not in CRITIC_ENCODERS:
            raise ValueError(f"critic_encoder={self.critic_encoder!r}; expected one of {list(CRITIC_ENCODERS)}")
        if self.actor_q not in ("min", "mean"):
            raise ValueError(f"actor_q={self.actor_q!r}; expected 'min' or 'mean'")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy={self.target_entropy}; expected a finite number or None")
        if self.shift_pad is not None and not 0 <= self.shift_pad <= 16:
            raise ValueError(f"shift_pad={self.shift_pad}; expected None or an integer in 0 .. 16")
        # A factor 1 - strength below 0 would invert the image.
        if not 0.0 <= self.color_jitter <= 1.0:
            raise ValueError(f"color_jitter={self.color_jitter}; expected 0 <= color_jitter <= 1")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction={self.offline_fraction}; expected 0 <= offline_fraction <= 1")
        for name in ("bc_weight", "anchor_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name}={getattr(self, name)}; expected a finite number >= 0")


# ------------------------------------------------------------------------------------------------------- agent


class VisualSAC:
    """Soft actor-critic from camera images: `act` for rollouts, `update_many` for learning.

    Batches are what `replay.ReplayBuffer.sample` / `replay.sample_mixed` return for a Dict observation space:
    obs and next_obs are dicts with "proprio", one uint8 (B, H, W, 3 * frame_stack) image per camera of `net`,
    and, for the asymmetric critic, "state". Random numbers come from torch's global generator, so
    `torch.manual_seed` makes a run repeatable.
    """

    def __init__(self, net: PixelNetConfig, action_dim: int, config: VisualSACConfig | None = None,
                 state_dim: int | None = None, device: str | torch.device = "cpu"):
        self.config = config = config or VisualSACConfig()
        if action_dim < 1:
            raise ValueError(f"action_dim={action_dim}; expected an integer >= 1")
        if config.asymmetric_critic and (state_dim is None or state_dim < 1):
            raise ValueError(f"state_dim={state_dim}; the asymmetric critic (asymmetric_critic=True) needs the "
                             "size of the privileged state, an integer >= 1")
        self.net, self.action_dim, self.device = net, int(action_dim), torch.device(device)
        self.state_dim = int(state_dim) if state_dim is not None else None
        self.shift_pad = default_shift_pad(net.image_size) if config.shift_pad is None else config.shift_pad
        self.actor = PixelActor(net, self.action_dim, stochastic=True).to(self.device)
        if self.encoder_frozen:
            self.actor.encoder.requires_grad_(False)
        self._build_critics()
        self.log_alpha = torch.tensor(math.log(config.init_temperature), device=self.device, requires_grad=True)
        self.target_entropy = float(-action_dim if config.target_entropy is None else config.target_entropy)
        self._build_optimizers()
        self.num_updates = 0
        self.anchor: PixelActor | None = None
        self.anchor_shares_features = False

    def set_anchor(self, actor: PixelActor | None = None) -> None:
        """Freeze a copy of `actor` (default: the current actor) as the reference `anchor_weight` pulls toward."""
        self.anchor = copy.deepcopy(self.actor if actor is None else actor).requires_grad_(False).eval()
        # Over a frozen encoder that the anchor shares, the anchor's head reads the features the update computed.
        same = zip(self.anchor.encoder.state_dict().values(), self.actor.encoder.state_dict().values(), strict=True)
        self.anchor_shares_features = self.encoder_frozen and all(torch.equal(a, b) for a, b in same)

    def _build_critics(self) -> None:
        """The critic's input embedding (state normalizer, or feature trunk) and the Q ensemble, with targets."""
        config, net = self.config, self.net
        self.state_normalizer = self.critic_trunk = self.critic_trunk_target = self.critic_encoder = None
        if not config.asymmetric_critic and config.critic_encoder == "own":
            self.critic_encoder = copy.deepcopy(self.actor.encoder)
        if config.asymmetric_critic:
            self.state_normalizer = ObsNormalizer(self.state_dim).to(self.device)
            critic_in = self.state_dim
        else:
            self.critic_trunk = feature_trunk(self.actor.encoder.repr_dim, net.feature_dim).to(self.device)
            self.critic_trunk_target = copy.deepcopy(self.critic_trunk).requires_grad_(False)
            critic_in = net.feature_dim + PROPRIO_SIZE
        hidden = tuple(int(width) for width in net.hidden_dims)
        self.critic = CriticEnsemble(critic_in, self.action_dim, hidden, config.num_critics, config.critic_layer_norm)
        self.critic = self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        trunks = [] if self.critic_trunk is None else [(self.critic_trunk, self.critic_trunk_target)]
        pairs = trunks + [(self.critic, self.critic_target)]
        self._critic_params = [param for online, _ in pairs for param in online.parameters()]
        self._target_params = [param for _, target in pairs for param in target.parameters()]

    def _build_optimizers(self) -> None:
        config = self.config
        # The actor's encoder belongs to whichever loss trains it: the actor's, or the critic's when shared.
        encoder_params = list(self.actor.encoder.parameters())
        encoder_ids = {id(param) for param in encoder_params}
        actor_params = [param for param in self.actor.parameters()
                        if self.actor_trains_encoder or id(param) not in encoder_ids]
        critic_encoder = self.actor.encoder if self.critic_encoder is None else self.critic_encoder
        trains_encoder = not (config.asymmetric_critic or self.encoder_frozen)
        critic_params = (list(critic_encoder.parameters()) if trains_encoder else []) + self._critic_params
        # One optimizer for the actor and the temperature (own learning rates): their losses share a backward.
        self.actor_optimizer = adam([{"params": actor_params, "lr": config.actor_lr},
                                      {"params": [self.log_alpha], "lr": config.alpha_lr}], self.device)
        self.critic_optimizer = adam([{"params": critic_params, "lr": config.critic_lr}], self.device)

    @property
    def encoder_frozen(self) -> bool:
        """True when no loss trains the conv encoder (critic_encoder='frozen' with a symmetric critic)."""
        return not self.config.asymmetric_critic and self.config.critic_encoder == "frozen"

    @property
    def actor_trains_encoder(self) -> bool:
        """True when the actor loss trains the actor's encoder (asymmetric critic, or a critic with its own)."""
        return self.config.asymmetric_critic or self.critic_encoder is not None

    def copy_actor_encoder_to_critic(self) -> None:
        """Start the critic's own encoder from the actor's (e.g. after loading a pretrained actor)."""
        if self.critic_encoder is None:
            raise ValueError("copy_actor_encoder_to_critic needs critic_encoder='own' with a symmetric critic")
        self.critic_encoder.load_state_dict(self.actor.encoder.state_dict())

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp())

    def fit_obs_normalizer(self, proprio: np.ndarray, state: np.ndarray | None) -> None:
        """Fit the fixed standardizations from early data: the actor's proprioception and the critic's state."""
        with torch.no_grad():
            self.actor.proprio_normalizer.fit(torch.as_tensor(proprio, dtype=torch.float32, device=self.device))
            if self.state_normalizer is None:
                return
            if state is None:
                raise ValueError("state=None; the asymmetric critic standardizes the privileged state, so "
                                 "fit_obs_normalizer needs state samples (N, state_dim)")
            self.state_normalizer.fit(torch.as_tensor(state, dtype=torch.float32, device=self.device))

    def act(self, obs: dict, eval_mode: bool) -> np.ndarray:
        """Action (action_dim,) float32 in [-1, 1] for one observation (no batch axis), frames already stacked.

        eval_mode returns the deterministic tanh(mean); otherwise a sample from the policy.
        """
        check_pixel_observation(obs, self.net, stacked=True)
        return pixel_action(self.actor, obs, deterministic=eval_mode, device=self.device)

    def behavior_clone(self, obs: dict[str, np.ndarray], actions: np.ndarray, steps: int, batch_size: int,
                       rng: np.random.Generator) -> float:
        """Fit tanh(actor mean) to demonstrated actions (MSE) on augmented images, training encoder and actor;
        returns the last loss. A warm start, not a constraint: afterwards SAC is free to improve on the demos."""
        actions_all = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        # With a shared encoder the encoder's optimizer is the critic's; the critic's other weights get no
        # gradient here, and Adam leaves parameters without a gradient alone.
        optimizers = [self.actor_optimizer] + ([] if self.actor_trains_encoder else [self.critic_optimizer])
        loss = torch.zeros(())
        for _ in range(steps):
            index = rng.integers(0, len(actions_all), size=batch_size)
            tensors = {key: self._stack([obs[key][index]], key)[0] for key in self._obs_keys(obs, critic=False)}
            mean, _ = self.actor(self._augmented_images(tensors), tensors["proprio"])
            loss = (torch.tanh(mean) - actions_all[torch.as_tensor(index, device=self.device)]).square().mean()
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
        return float(loss.detach())

    # -- learning ---------------------------------------------------------------------------------------------

    def update(self, batch: dict) -> dict[str, float]:
        """One critic step on `batch`, plus an actor and temperature step every `actor_update_every` calls."""
        return self.update_many(lambda: batch, 1)

    def update_many(self, sample_fn: Callable[[], dict], num_updates: int) -> dict[str, float]:
        """`num_updates` updates, each on a fresh `sample_fn()` batch; returns mean metrics.

        Actor metrics are averaged over the updates that stepped the actor, and absent if none did.
        """
        if num_updates < 1:
            raise ValueError(f"num_updates={num_updates}; expected an integer >= 1")
        stacked = self._to_tensors([sample_fn() for _ in range(num_updates)])
        return average_metrics([self._update_step(select_update(stacked, index)) for index in range(num_updates)])

    def update_critic_only(self, sample_fn: Callable[[], dict], num_updates: int) -> None:
        """Critic steps with the actor and temperature frozen: evaluate the current (e.g. cloned) policy.

        With a shared encoder these steps do train it, as every critic step does.
        """
        for _ in range(num_updates):
            self._critic_step(select_update(self._to_tensors([sample_fn()]), 0))
            self._update_targets()

    def _to_tensors(self, batches: list[dict]) -> dict:
        """(U, B, ...) tensors from U batches: one numpy stack and one host-to-device copy per array.

        Images stay uint8 until `stack_cameras` on the single batch being used.
        """
        missing = [key for key in _BATCH_KEYS if key not in batches[0]]
        if missing:
            raise ValueError(f"batch is missing {missing}; expected keys {list(_BATCH_KEYS)}")
        obs_keys = self._obs_keys(batches[0]["obs"], critic=True)
        tensors: dict = {}
        for prefix in ("obs", "next_obs"):
            tensors[prefix] = {key: self._stack([batch[prefix][key] for batch in batches], key) for key in obs_keys}
        demo = ("demo",) if "demo" in batches[0] and self.config.bc_weight > 0 else ()
        for key in ("action", "reward", "discount", "terminated", *demo):
            tensors[key] = self._stack([batch[key] for batch in batches], key)
        return tensors

    def _obs_keys(self, obs, critic: bool) -> list[str]:
        """The observation arrays the actor needs, plus the state when the (asymmetric) critic needs it."""
        if not isinstance(obs, dict):
            raise ValueError(f"batch obs is a {type(obs).__name__}; VisualSAC takes dicts of images and proprio")
        keys = [*self.net.cameras, "proprio"]
        if critic and self.config.asymmetric_critic and "state" not in keys:
            keys.append("state")
        missing = [key for key in keys if key not in obs]
        if missing:
            raise ValueError(f"batch obs is missing {missing} (keys {sorted(obs)}); this agent needs {keys}")
        return keys

    def _stack(self, arrays: list[np.ndarray], key: str) -> torch.Tensor:
        dtype = np.uint8 if key in self.net.cameras else np.bool_ if key in ("terminated", "demo") else np.float32
        array = np.stack(arrays).astype(dtype, copy=False)
        return torch.from_numpy(array).to(self.device, non_blocking=True)

    def _augmented_images(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Random shift then colour jitter, fresh draws per call: (B, C, H, W) float in [0, 1]."""
        images = random_shift(stack_cameras(obs, self.net.cameras), self.shift_pad)
        return color_jitter(images, self.config.color_jitter)

    def _update_step(self, batch: dict) -> dict[str, torch.Tensor]:
        metrics, features = self._critic_step(batch)
        self.num_updates += 1
        if self.num_updates % self.config.actor_update_every == 0:
            metrics.update(self._actor_and_temperature_step(batch, features))
        self._update_targets()
        return metrics

    def _update_targets(self) -> None:
        with torch.no_grad():
            # target <- target + tau * (online - target), all tensors in one foreach call.
            torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)

    def _critic_input(self, obs: dict, features: torch.Tensor | None, target: bool) -> torch.Tensor:
        """What the critics see: the standardized state, or a feature trunk of the conv features + proprio."""
        if self.config.asymmetric_critic:
            return self.state_normalizer(obs["state"])
        trunk = self.critic_trunk_target if target else self.critic_trunk
        return torch.cat([trunk(features), self.actor.proprio_normalizer(obs["proprio"])], dim=-1)

    def _critic_features(self, images: torch.Tensor, actor_features: torch.Tensor | None) -> torch.Tensor | None:
        """The conv features the critic reads: None (asymmetric), the actor's, or its own encoder's."""
        if self.config.asymmetric_critic:
            return None
        return actor_features if self.critic_encoder is None else self.critic_encoder(images)

    def _critic_step(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """One critic step; returns its metrics and the (pre-step) conv features the critic read, or None when
        the critic did not need them (asymmetric)."""
        config, obs, next_obs = self.config, batch["obs"], batch["next_obs"]
        with torch.no_grad():
            next_images = self._augmented_images(next_obs)
            next_features = self.actor.encoder(next_images)
            next_mean, next_log_std = self.actor.head_from_features(next_features, next_obs["proprio"])
            next_action, next_log_prob = squashed_sample(next_mean, next_log_std)
            members = None
            if config.num_min_critics < config.num_critics:
                # RLPD: the min over a random subset tames overestimation less pessimistically than all members.
                members = torch.randperm(config.num_critics, device=self.device)[: config.num_min_critics]
            next_input = self._critic_input(next_obs, self._critic_features(next_images, next_features), target=True)
            next_q = self.critic_target(next_input, next_action, members).min(dim=0).values  # (B,)
            soft_value = next_q - self.log_alpha.exp() * next_log_prob
            # discount is gamma**k for a k-step return; terminal transitions do not bootstrap.
            target_q = batch["reward"] + batch["discount"] * (~batch["terminated"]) * soft_value  # (B,)
        images = None if config.asymmetric_critic else self._augmented_images(obs)
        shared = images is not None and self.critic_encoder is None
        features = self._critic_features(images, self.actor.encoder(images) if shared else None)
        q = self.critic(self._critic_input(obs, features, target=False), batch["action"])  # (num_critics, B)
        # Sum of per-critic MSEs: each member gets exactly the gradient it would get trained alone.
        critic_loss = (q - target_q).square().mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        metrics = {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean(), "target_q_mean": target_q.mean()}
        return metrics, None if features is None else features.detach()

    def _actor_and_temperature_step(self, batch: dict, features: torch.Tensor | None) -> dict[str, torch.Tensor]:
        obs, proprio = batch["obs"], batch["obs"]["proprio"]
        anchor_images = self.anchor is not None and not self.anchor_shares_features
        images = self._augmented_images(obs) if self.actor_trains_encoder or anchor_images else None
        if self.actor_trains_encoder:
            mean, log_std = self.actor(images, proprio)
        else:  # shared encoder: the critic step's conv features, detached (DrQ-v2 reuses them the same way)
            mean, log_std = self.actor.head_from_features(features, proprio)
        action, log_prob = squashed_sample(mean, log_std)
        with torch.no_grad():
            critic_input = self._critic_input(obs, features, target=False)  # independent of the actor
        with frozen(self.critic):
            q = self.critic(critic_input, action)  # (num_critics, B)
        q_policy = q.min(dim=0).values if self.config.actor_q == "min" else q.mean(dim=0)
        alpha = self.log_alpha.detach().exp()
        actor_loss = (alpha * log_prob - q_policy).mean()
        metrics = {}
        demo = batch.get("demo")
        if demo is not None and demo.any():
            # TD3+BC-style anchor: the scale of Q sets the weight, so bc_weight is unitless.
            bc_loss = (torch.tanh(mean[demo]) - batch["action"][demo]).square().mean()
            actor_loss = actor_loss + self.config.bc_weight * q_policy.abs().mean().detach() * bc_loss
            metrics["bc_loss"] = bc_loss.detach()
        if self.anchor is not None and self.config.anchor_weight > 0:
            with torch.no_grad():
                anchor_out = self.anchor(images, proprio) if anchor_images else \
                    self.anchor.head_from_features(features, proprio)
                reference = torch.tanh(anchor_out[0])
            anchor_loss = (torch.tanh(mean) - reference).square().mean()
            actor_loss = actor_loss + self.config.anchor_weight * q_policy.abs().mean().detach() * anchor_loss
            metrics["anchor_loss"] = anchor_loss.detach()
        entropy = -log_prob.detach().mean()
        alpha_loss = self.log_alpha.exp() * (entropy - self.target_entropy)
        # Each loss sees the other's variable detached, so one backward gives both exactly their own gradients.
        self.actor_optimizer.zero_grad(set_to_none=True)
        (actor_loss + alpha_loss).backward()
        self.actor_optimizer.step()
        return {"actor_loss": actor_loss.detach(), "alpha": alpha, "entropy": entropy, **metrics}

    # -- checkpoint state -------------------------------------------------------------------------------------

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def _modules(self) -> dict[str, nn.Module]:
        modules = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                   "critic_trunk": self.critic_trunk, "critic_trunk_target": self.critic_trunk_target,
                   "state_normalizer": self.state_normalizer, "critic_encoder": self.critic_encoder}
        return {name: module for name, module in modules.items() if module is not None}

    def _extras(self) -> dict[str, torch.Tensor]:
        return {"log_alpha": self.log_alpha, "num_updates": torch.tensor(self.num_updates, dtype=torch.int64)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume training as a flat dict of tensors (layout in agent_state.py)."""
        return pack_agent_state(self._modules(), self._optimizers(), self._extras())

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from `state_dict()`; raises ValueError naming the first missing or mismatching field."""
        extras = self._extras()
        unpack_agent_state(tensors, self._modules(), self._optimizers(), extras)
        self.num_updates = int(extras["num_updates"])

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """PixelActor weights only: load them into `PixelActor(net, action_dim, stochastic=True)` and wrap it in
        a `PixelPolicy` to deploy."""
        return {key: value.detach().clone() for key, value in self.actor.state_dict().items()}

