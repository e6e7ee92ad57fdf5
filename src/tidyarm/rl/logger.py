"""Training logs: TensorBoard event files plus a long-format CSV (step, key, value) for plots and tests."""

from __future__ import annotations

import csv
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    def __init__(self, run_dir: Path, start_step: int = 0):
        self.csv_path = run_dir / "metrics.csv"
        if start_step and self.csv_path.exists():
            self._drop_rows_after(start_step)  # a resumed run rewrites what came after its checkpoint
        new_file = not self.csv_path.exists()
        self._csv_file = open(self.csv_path, "a", newline="")  # noqa: SIM115 (kept open for the whole run)
        self._csv = csv.writer(self._csv_file)
        if new_file:
            self._csv.writerow(["step", "key", "value"])
        self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)

    def log(self, step: int, metrics: dict[str, float], prefix: str) -> None:
        for key, value in metrics.items():
            name = f"{prefix}/{key}"
            self._csv.writerow([step, name, f"{float(value):.6g}"])
            self._tensorboard.add_scalar(name, float(value), step)
        self._csv_file.flush()

    def close(self) -> None:
        self._csv_file.close()
        self._tensorboard.close()

    def _drop_rows_after(self, step: int) -> None:
        with open(self.csv_path, newline="") as handle:
            rows = list(csv.reader(handle))
        kept = [rows[0]] + [row for row in rows[1:] if len(row) == 3 and row[0].isdigit() and int(row[0]) <= step]
        with open(self.csv_path, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """{key: [(step, value), ...]} from a metrics.csv."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            series.setdefault(row["key"], []).append((int(row["step"]), float(row["value"])))
    return series
