"""The noise schedule, DDPM noising for training and deterministic DDIM sampling (Song et al. 2021).

Squared-cosine schedule (Nichol & Dhariwal 2021), epsilon prediction, samples clipped to [-1, 1] (actions
are min-max normalized there). A few dozen lines, so no dependency on a diffusion library.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def squared_cosine_betas(steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """beta_t from alpha_bar(s) = cos^2((s + 0.008) / 1.008 * pi / 2), capped so the last step stays finite."""
    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor([min(1 - alpha_bar((t + 1) / steps) / alpha_bar(t / steps), max_beta) for t in range(steps)],
                        dtype=torch.float32)


class NoiseSchedule:
    def __init__(self, train_steps: int = 100, clip: float = 1.0):
        if train_steps < 2:
            raise ValueError(f"train_steps = {train_steps}: expected at least 2")
        self.train_steps, self.clip = train_steps, clip
        self.alpha_bar = torch.cumprod(1.0 - squared_cosine_betas(train_steps), dim=0)  # (T,)

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, per sample (steps: (B,) ints)."""
        alpha_bar = self.alpha_bar[steps].view(-1, *([1] * (clean.dim() - 1)))
        return alpha_bar.sqrt() * clean + (1 - alpha_bar).sqrt() * noise

    def sampling_steps(self, count: int) -> list[int]:
        """Evenly spaced timesteps, high to low, starting at 0 ("leading" spacing): e.g. 90, 80, ..., 0."""
        if not 1 <= count <= self.train_steps:
            raise ValueError(f"inference steps = {count}: expected 1 .. {self.train_steps}")
        ratio = self.train_steps // count
        return [step * ratio for step in reversed(range(count))]

    def sample(self, predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape: tuple[int, ...],
               count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM (eta = 0) from pure noise, `count` denoising steps; predict_noise(x_t, t (B,)) -> epsilon."""
        sample = torch.randn(shape, generator=generator)
        steps = self.sampling_steps(count)
        ratio = self.train_steps // count
        for step in steps:
            alpha_bar = self.alpha_bar[step]
            previous = self.alpha_bar[step - ratio] if step - ratio >= 0 else torch.tensor(1.0)
            noise = predict_noise(sample, torch.full((shape[0],), step, dtype=torch.long))
            clean = ((sample - (1 - alpha_bar).sqrt() * noise) / alpha_bar.sqrt()).clamp(-self.clip, self.clip)
            noise = (sample - alpha_bar.sqrt() * clean) / (1 - alpha_bar).sqrt()  # consistent with the clipped x_0
            sample = previous.sqrt() * clean + (1 - previous).sqrt() * noise
        return sample
