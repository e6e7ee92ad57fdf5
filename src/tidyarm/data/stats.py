"""Feature statistics as LeRobot stores them (meta/stats.json and per-episode stats/... columns).

Each feature gets min, max, mean, std, count and the quantiles q01, q10, q50, q90, q99. Vectors are
reduced over frames (stats of shape (n,)); scalar columns keep a trailing axis (shape (1,)); images are
reduced per channel over sampled frames and scaled to [0, 1], with shape (3, 1, 1). The dataset's stats
are the episodes' stats combined: count-weighted mean, the parallel-variance formula for std, min of
mins, max of maxes, and count-weighted quantiles (LeRobot's approximation, since exact quantiles of a
union need the data).
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


def image_sample_indices(length: int, min_samples: int = 100, max_samples: int = 10_000) -> np.ndarray:
    """Frames of an episode that image stats are computed over: evenly spaced, about length**0.75 of them
    (at least 100 or all), LeRobot's rule."""
    count = max(min(min_samples, length), min(int(length ** 0.75), max_samples))
    return np.round(np.linspace(0, length - 1, count)).astype(int)


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over the frames (axis 0) of a (N,) or (N, n) column."""
    data = np.asarray(values, dtype=np.float64)
    data = data[:, None] if data.ndim == 1 else data.reshape(len(data), -1)
    stats = {"min": data.min(0), "max": data.max(0), "mean": data.mean(0), "std": data.std(0),
             "count": np.array([len(data)])}
    for key, value in zip(QUANTILE_KEYS, np.quantile(data, QUANTILES, axis=0), strict=True):
        stats[key] = value
    return stats


def channel_histograms(image: np.ndarray) -> np.ndarray:
    """(3, 256) pixel-value counts per channel of one uint8 (H, W, 3) image: all image stats need."""
    flat = image.reshape(-1, image.shape[-1])
    return np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])])


def image_stats(histograms: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats in [0, 1], shape (3, 1, 1), from the summed (3, 256) histograms of sampled frames;
    count is the number of frames sampled (set by the caller)."""
    values = np.arange(256) / 255.0
    totals = histograms.sum(1)
    mean = (histograms * values).sum(1) / totals
    std = np.sqrt(np.maximum((histograms * values ** 2).sum(1) / totals - mean ** 2, 0.0))
    present = histograms > 0
    low = np.array([values[np.flatnonzero(row)[0]] for row in present])
    high = np.array([values[np.flatnonzero(row)[-1]] for row in present])
    cumulative = np.cumsum(histograms, axis=1) / totals[:, None]
    stats = {"min": low, "max": high, "mean": mean, "std": std}
    for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
        stats[key] = np.array([values[np.searchsorted(row, q)] for row in cumulative])
    return {key: value.reshape(-1, 1, 1) for key, value in stats.items()}


def aggregate(stats_list: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """Combine per-episode stats into dataset stats, feature by feature."""
    keys = dict.fromkeys(key for stats in stats_list for key in stats)
    return {key: _aggregate_feature([stats[key] for stats in stats_list if key in stats]) for key in keys}


def _aggregate_feature(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    counts = np.array([float(np.asarray(p["count"]).reshape(-1)[0]) for p in parts])
    means = np.stack([np.asarray(p["mean"], dtype=np.float64) for p in parts])
    weights = (counts / counts.sum()).reshape(-1, *([1] * (means.ndim - 1)))
    mean = (weights * means).sum(0)
    variances = np.stack([np.asarray(p["std"], dtype=np.float64) ** 2 for p in parts])
    combined = {"min": np.min(np.stack([p["min"] for p in parts]), 0),
                "max": np.max(np.stack([p["max"] for p in parts]), 0),
                "mean": mean, "std": np.sqrt((weights * (variances + (means - mean) ** 2)).sum(0)),
                "count": np.array([int(counts.sum())])}
    for key in QUANTILE_KEYS:
        if all(key in p for p in parts):
            combined[key] = (weights * np.stack([np.asarray(p[key], dtype=np.float64) for p in parts])).sum(0)
    return combined


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {key: {name: np.asarray(value).tolist() for name, value in feature.items()}
            for key, feature in stats.items()}


def from_json(payload: dict) -> dict[str, dict[str, np.ndarray]]:
    return {key: {name: np.asarray(value) for name, value in feature.items()} for key, feature in payload.items()}
