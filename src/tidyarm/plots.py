"""Learning-curve PNG (success and return against env steps) from a run's metrics.csv."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from tidyarm.rl.logger import read_metrics  # noqa: E402


def plot_learning_curve(run_dir: Path, title: str = "") -> Path:
    series = read_metrics(run_dir / "metrics.csv")
    figure, (success_axis, return_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, axis, label in (("train/success_rate", success_axis, "training episodes (last 20)"),
                             ("train/episode_return", return_axis, "training episodes (mean of 20)"),
                             ("eval/success_rate", success_axis, "eval (deterministic)"),
                             ("eval/return", return_axis, "eval (deterministic)")):
        if key not in series:
            continue
        steps, values = (np.array(column) for column in zip(*series[key], strict=True))
        if key == "train/episode_return" and len(values) >= 20:  # single episodes are too noisy to read
            steps, values = steps[19:], np.convolve(values, np.ones(20) / 20, mode="valid")
        evaluation = key.startswith("eval")
        axis.plot(steps, values, marker="o" if evaluation else None, markersize=3, label=label,
                  linewidth=2 if evaluation else 1, alpha=1.0 if evaluation else 0.6, zorder=3 if evaluation else 2)
    success_axis.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    success_axis.set(xlabel="env steps", ylabel="success rate", ylim=(-0.02, 1.02), title="success")
    return_axis.set(xlabel="env steps", ylabel="episode return", title="return")
    for axis in (success_axis, return_axis):
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # a distillation run logs no returns
            axis.legend(loc="lower right", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    path = run_dir / "learning_curve.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
