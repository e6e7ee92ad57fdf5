"""hil_curves.png: success and intervention rates against robot time, from a HIL run's metrics.csv."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tidyarm.rl.logger import read_metrics  # noqa: E402

CURVES = (("train/success_rate", "training episodes: classifier success (last 20)"),
          ("train/oracle_success_rate", "training episodes: oracle success (last 20)"),
          ("train/intervention_rate", "intervention rate (share of steps, last 20)"),
          ("eval/oracle_success_rate", "evaluation blocks: oracle success, no interventions"))


def plot_hil_curves(run_dir: Path, control_hz: float = 10.0) -> Path:
    series = read_metrics(Path(run_dir) / "metrics.csv")
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for key, label in CURVES:
        if key not in series:
            continue
        steps, values = (np.array(column) for column in zip(*series[key], strict=True))
        evaluation = key.startswith("eval")
        axis.plot(steps / control_hz / 60, values, label=label, marker="o" if evaluation else None, markersize=3,
                  linewidth=2 if evaluation else 1.2)
    axis.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    axis.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    axis.set(xlabel="robot time (minutes at the control rate)", ylabel="rate", ylim=(-0.02, 1.02),
             title=f"HIL-SERL: {Path(run_dir).name}")
    axis.grid(alpha=0.3)
    axis.legend(loc="center right", fontsize=8)
    figure.tight_layout()
    path = Path(run_dir) / "hil_curves.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
