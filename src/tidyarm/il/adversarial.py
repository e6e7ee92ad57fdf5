"""Off-policy GAIL (in the style of DAC): a discriminator D tells expert transitions from the policy's, and
SAC learns on a reward from D relabelled from the current D every time a batch is sampled.

The reward is -log(1 - D) = softplus(logit) (positive: ending an episode early never pays) or
log D - log(1 - D) = the logit itself (AIRL's form). Once D is confident, softplus(logit) ~ exp(logit) is
nearly flat over the policy's states, while the logit keeps telling nearer from farther; it can be negative,
which on a task with a failure termination (lift: the cube falls off the table) pays for ending early.

D sees either (s, a), as in GAIL, or the state reached, s' (state-marginal matching, as AIRL's state-only
reward and GAIfO do). With (s, a), D can tell SAC's exploration noise from the scripted expert's smooth
actions wherever the states are, and the reward then says little about where to go; s' hides the action
itself (joint_command in the state still echoes the last one).

The discriminator trains on demonstrations (the offline buffer) against the replay buffer, with a gradient
penalty on points between the two (|grad D| pulled to 1) that keeps D smooth, so the reward has a slope
where the policy is rather than a cliff at the expert's data. States are standardized with statistics fitted
once, on the demonstrations, and never changed (a moving input scale would move the reward under the critic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

DISCRIMINATOR_INPUTS = ("state_action", "next_state")
REWARD_FORMS = ("softplus", "logit")


@dataclass(frozen=True)
class GAILConfig:
    """Discriminator and reward of off-policy GAIL."""

    inputs: str = "state_action"
    """What D sees: state_action (s, a) or next_state (s' alone)."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Widths of the discriminator's hidden layers."""
    lr: float = 3e-4
    """Adam learning rate of the discriminator."""
    batch_size: int = 128
    """Expert and policy transitions per discriminator step (each)."""
    update_every: int = 1
    """Env steps between discriminator steps once learning starts."""
    pretrain_steps: int = 1_000
    """Discriminator steps on the random warm-up data before SAC's first update (its critic warm-up needs a
    reward that already means something)."""
    gradient_penalty: float = 10.0
    """Weight of the gradient penalty on interpolated inputs."""
    reward: str = "logit"
    """Reward from D's logit: logit (log D - log(1 - D)) or softplus (-log(1 - D)); see docs/irl.md."""
    max_reward: float = 10.0
    """Cap on |reward|: a saturated discriminator must not blow up the critic's targets."""

    def __post_init__(self) -> None:
        if self.reward not in REWARD_FORMS:
            raise ValueError(f"reward = {self.reward!r}: expected one of {list(REWARD_FORMS)}")
        if self.inputs not in DISCRIMINATOR_INPUTS:
            raise ValueError(f"inputs = {self.inputs!r}: expected one of {list(DISCRIMINATOR_INPUTS)}")
        if not self.hidden_dims or any(int(width) < 1 for width in self.hidden_dims):
            raise ValueError(f"hidden_dims = {self.hidden_dims}: expected a non-empty tuple of integers >= 1")
        for name in ("batch_size", "update_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: expected an integer >= 1")
        if self.pretrain_steps < 0:
            raise ValueError(f"pretrain_steps = {self.pretrain_steps}: expected an integer >= 0")
        for name in ("lr", "max_reward"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} = {getattr(self, name)}: expected a finite number > 0")
        if not (math.isfinite(self.gradient_penalty) and self.gradient_penalty >= 0):
            raise ValueError(f"gradient_penalty = {self.gradient_penalty}: expected a finite number >= 0")


class Discriminator(nn.Module):
    """logit D: (B, obs_dim) states and, with `action_dim` > 0, (B, action_dim) actions -> (B,); > 0 is 'expert'."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: tuple[int, ...]):
        super().__init__()
        layers, width = [], obs_dim + action_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.Tanh()]  # tanh: smooth, so the gradient penalty is meaningful
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    def fit_normalizer(self, observations: np.ndarray) -> None:
        observations = torch.as_tensor(observations, dtype=torch.float32)
        self.obs_mean.copy_(observations.mean(0))
        self.obs_std.copy_(observations.std(0).clamp_min(1e-3))

    def inputs(self, obs: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        obs = (obs - self.obs_mean) / self.obs_std
        return obs if action is None else torch.cat([obs, action], dim=-1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs).squeeze(-1)


class GAILReward:
    """The `RewardModel` the training loop calls: relabels batches with -log(1 - D) and trains D as it goes."""

    finished = False  # adversarial training has no convergence test; the step budget ends it

    def __init__(self, config: GAILConfig, obs_dim: int, action_dim: int, learning_starts: int, seed: int):
        self.config, self.learning_starts = config, learning_starts
        self.use_action = config.inputs == "state_action"
        self.discriminator = Discriminator(obs_dim, action_dim if self.use_action else 0, config.hidden_dims)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.discriminator(self._inputs(obs, action, next_obs))
            # -log(1 - sigmoid(x)) = softplus(x); log sigmoid(x) - log(1 - sigmoid(x)) = x.
            reward = functional.softplus(logits) if self.config.reward == "softplus" else logits
            return reward.clamp(-self.config.max_reward, self.config.max_reward).numpy()

    def update(self, trainer) -> dict[str, float]:
        """Pretrain D when learning starts, then one step every `update_every` env steps."""
        step = trainer.step
        if step < self.learning_starts or trainer.offline is None:
            return {}
        if step == self.learning_starts:
            self.discriminator.fit_normalizer(trainer.offline.observations())
            for _ in range(self.config.pretrain_steps):
                self.train_step(trainer.offline, trainer.online)
        if step % self.config.update_every:
            return {}
        return self.train_step(trainer.offline, trainer.online)

    def train_step(self, expert_buffer, policy_buffer) -> dict[str, float]:
        """One logistic-loss step: expert transitions labelled 1, policy transitions 0, plus the penalty."""
        expert = expert_buffer.sample(self.config.batch_size, self.rng)
        policy = policy_buffer.sample(self.config.batch_size, self.rng)
        return self.train_on(expert, policy)

    def _inputs(self, obs, action, next_obs) -> torch.Tensor:
        """(B, obs_dim + action_dim) standardized (s, a), or (B, obs_dim) standardized s'."""
        if self.use_action:
            return self.discriminator.inputs(torch.as_tensor(obs, dtype=torch.float32),
                                             torch.as_tensor(action, dtype=torch.float32))
        return self.discriminator.inputs(torch.as_tensor(next_obs, dtype=torch.float32))

    def train_on(self, expert: dict, policy: dict) -> dict[str, float]:
        """One step on batches (dicts with obs, action, next_obs) of expert and policy transitions."""
        d = self.discriminator
        expert_in = self._inputs(expert["obs"], expert["action"], expert["next_obs"])
        policy_in = self._inputs(policy["obs"], policy["action"], policy["next_obs"])
        expert_logits, policy_logits = d(expert_in), d(policy_in)
        loss = (functional.binary_cross_entropy_with_logits(expert_logits, torch.ones_like(expert_logits))
                + functional.binary_cross_entropy_with_logits(policy_logits, torch.zeros_like(policy_logits)))
        mix = torch.rand(len(expert_in), 1)
        between = (mix * expert_in + (1 - mix) * policy_in).requires_grad_(True)
        gradient, = torch.autograd.grad(d(between).sum(), between, create_graph=True)
        penalty = (gradient.norm(dim=1) - 1.0).square().mean()
        self.optimizer.zero_grad(set_to_none=True)
        (loss + self.config.gradient_penalty * penalty).backward()
        self.optimizer.step()
        accuracy = 0.5 * ((expert_logits > 0).float().mean() + (policy_logits < 0).float().mean())
        return {"disc_loss": float(loss.detach()), "disc_penalty": float(penalty.detach()),
                "disc_accuracy": float(accuracy)}
