"""Small statistics used when reporting results."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% (by default) Wilson score interval for a success rate; well behaved at 0% and 100%."""
    if trials <= 0:
        raise ValueError(f"trials = {trials}: expected at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes = {successes}: expected 0..{trials}")
    rate = successes / trials
    denominator = 1 + z**2 / trials
    center = (rate + z**2 / (2 * trials)) / denominator
    half_width = z * math.sqrt(rate * (1 - rate) / trials + z**2 / (4 * trials**2)) / denominator
    return max(0.0, center - half_width), min(1.0, center + half_width)
