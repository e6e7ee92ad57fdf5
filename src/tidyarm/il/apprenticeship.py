"""Apprenticeship learning by feature-expectation matching (Abbeel & Ng, 2004), projection method.

The reward is linear in state features, r(s') = w . phi(s'). Each iteration i: SAC improves the policy on
the current w for `iteration_steps` env steps (warm-started: actor, critics and replay carry over, which is
what makes it affordable on a CPU); its feature expectations mu_i are estimated by rollouts; the projection
of the expert's mu_E onto the line through the previous mu_bar and mu_i gives the new mu_bar, and
w = (mu_E - mu_bar) / |mu_E - mu_bar| with margin t = |mu_E - mu_bar|. It stops when t < epsilon or after
`iterations`. The policy returned is the iterate whose mu_i lies closest to mu_E (the paper's alternative to
solving for a mixture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from tidyarm.il.irl_reward import LearnedRewardWrapper, RolloutStats, StateFeatures, rollout_stats


@dataclass(frozen=True)
class ApprenticeshipConfig:
    """Projection-method apprenticeship learning."""

    iterations: int = 8
    """Most projection iterations (inner SAC phases, sharing the step budget equally) before stopping."""
    epsilon: float = 0.005
    """Stop once the margin t = |mu_E - mu_bar| falls below this (features live in [0, 1])."""
    rollout_episodes: int = 10
    """Episodes that estimate a policy's feature expectations (training seeds, never evaluation seeds)."""

    def __post_init__(self) -> None:
        for name in ("iterations", "rollout_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: expected an integer >= 1")
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon = {self.epsilon}: expected a finite number > 0")


def projection_step(mu_expert: np.ndarray, mu_bar: np.ndarray, mu_new: np.ndarray) -> tuple[np.ndarray, float]:
    """Project mu_E onto the line through mu_bar and mu_new; returns (new mu_bar, margin |mu_E - new mu_bar|)."""
    direction = mu_new - mu_bar
    squared = float(direction @ direction)
    if squared < 1e-12:  # the new policy adds nothing: mu_bar stays where it was
        return mu_bar.copy(), float(np.linalg.norm(mu_expert - mu_bar))
    # Clipped to the segment so mu_bar stays a convex combination of the policies' expectations.
    fraction = min(max(float(direction @ (mu_expert - mu_bar)) / squared, 0.0), 1.0)
    mu_bar = mu_bar + fraction * direction
    return mu_bar, float(np.linalg.norm(mu_expert - mu_bar))


def unit_weights(mu_expert: np.ndarray, mu_bar: np.ndarray) -> np.ndarray:
    """w = (mu_E - mu_bar) / |mu_E - mu_bar|: a unit norm keeps the reward's scale fixed as the margin shrinks."""
    difference = mu_expert - mu_bar
    norm = float(np.linalg.norm(difference))
    return (difference / norm if norm > 0 else difference).astype(np.float32)


@dataclass(eq=False)
class Iterate:
    """One projection iteration: the weights SAC trained on, and what the resulting policy did."""

    weights: np.ndarray
    stats: RolloutStats
    margin: float  # t after this iteration's projection
    actor: dict[str, torch.Tensor] = field(repr=False)


class ApprenticeshipReward:
    """The `RewardModel` the training loop calls: r = w . phi(next_obs), w updated every `iteration_steps`
    env steps after learning starts (the random warm-up policy is iterate 0, mu_start)."""

    def __init__(self, config: ApprenticeshipConfig, features: StateFeatures, rollout_env: LearnedRewardWrapper,
                 mu_expert: np.ndarray, mu_start: np.ndarray, gamma: float, learning_starts: int,
                 iteration_steps: int, rollout_seed: int):
        if iteration_steps < 1:
            raise ValueError(f"iteration_steps = {iteration_steps}: expected an integer >= 1")
        self.iteration_steps = iteration_steps
        self.config, self.features, self.env, self.gamma = config, features, rollout_env, gamma
        self.mu_expert, self.mu_bar = np.asarray(mu_expert, np.float64), np.asarray(mu_start, np.float64)
        self.weights = unit_weights(self.mu_expert, self.mu_bar)
        self.margin = float(np.linalg.norm(self.mu_expert - self.mu_bar))
        self.learning_starts, self.rollout_seed = learning_starts, rollout_seed
        self.iterates: list[Iterate] = []
        self.finished = False
        rollout_env.reward_fn = self  # rollouts report the learned return under the current weights

    def __call__(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        return self.features(next_obs) @ self.weights

    def update(self, trainer) -> dict[str, float]:
        """At the end of each inner SAC phase: score the policy, project, set new weights."""
        phase_end = trainer.step - self.learning_starts
        if phase_end <= 0 or phase_end % self.iteration_steps or self.finished:
            return {}
        seeds = [self.rollout_seed + 1000 * len(self.iterates) + k for k in range(self.config.rollout_episodes)]
        stats = rollout_stats(self.env, self.features, lambda obs: trainer.agent.act(obs, eval_mode=True), seeds,
                              self.gamma)
        self.mu_bar, self.margin = projection_step(self.mu_expert, self.mu_bar, stats.feature_expectations)
        self.iterates.append(Iterate(self.weights.copy(), stats, self.margin, trainer.agent.policy_state_dict()))
        self.weights = unit_weights(self.mu_expert, self.mu_bar)
        self.finished = self.margin < self.config.epsilon or len(self.iterates) >= self.config.iterations
        distance = float(np.linalg.norm(self.mu_expert - stats.feature_expectations))
        return {"irl_margin": self.margin, "irl_iteration": len(self.iterates), "irl_mu_distance": distance,
                "irl_true_return": stats.true_return, "irl_learned_return": stats.learned_return,
                **{f"irl_w_{name}": float(w) for name, w in zip(self.features.names, self.weights, strict=True)}}

    def best(self) -> int:
        """Index of the iterate whose feature expectations lie closest to the expert's."""
        if not self.iterates:
            raise RuntimeError("no apprenticeship iteration finished; raise total_steps above learning_starts "
                               "+ iteration_steps")
        distances = [np.linalg.norm(self.mu_expert - it.stats.feature_expectations) for it in self.iterates]
        return int(np.argmin(distances))
