"""Shared helpers for benchmarks: timing, a printed table and a JSON file under bench/results/."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def rate(fn: Callable[[], object], seconds: float = 2.0, warmup: int = 5) -> float:
    """Calls per second of `fn`, measured over about `seconds` of wall time after a warm-up."""
    for _ in range(warmup):
        fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return calls / elapsed


def paired_rates(first: Callable[[], object], second: Callable[[], object], seconds: float = 1.0,
                 repeats: int = 5) -> tuple[float, float]:
    """Best-of-`repeats` calls/s of two functions measured alternately, so load from other processes hits
    both alike and a ratio of the two stays meaningful on a noisy machine."""
    best_first = best_second = 0.0
    for _ in range(repeats):
        best_first = max(best_first, rate(first, seconds))
        best_second = max(best_second, rate(second, seconds))
    return best_first, best_second


def report(name: str, rows: list[dict], columns: list[str]) -> Path:
    """Print rows as an aligned table and write them (with machine info) to bench/results/<name>.json."""
    widths = [max(len(column), *(len(_fmt(row.get(column))) for row in rows)) for column in columns]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(_fmt(row.get(column)).ljust(width) for column, width in zip(columns, widths, strict=True)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    meta = {"machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    path.write_text(json.dumps({"benchmark": name, **meta, "rows": rows}, indent=2))
    print(f"wrote {path}")
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)
