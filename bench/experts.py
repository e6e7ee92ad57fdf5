"""Scripted-expert success rate over many seeds with the default randomization on (target >= 95%).

Run: .venv/bin/python bench/experts.py [--seeds 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from common import report  # noqa: E402

from tidyarm.rollout import make_policy, run_episodes  # noqa: E402
from tidyarm.sim import TASKS, So101Env  # noqa: E402
from tidyarm.stats import wilson_interval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--action-modes", nargs="+", default=["ee", "joint", "joint_delta"])
    args = parser.parse_args()
    rows = []
    for task in TASKS:
        for action_mode in args.action_modes:
            env = So101Env(task, action_mode=action_mode)
            start = time.perf_counter()
            episodes, _ = run_episodes(env, make_policy("expert", env), args.seeds, seed=0)
            successes = sum(e.success for e in episodes)
            low, high = wilson_interval(successes, len(episodes))
            rows.append({"task": task, "action_mode": action_mode, "episodes": len(episodes),
                         "success_rate": successes / len(episodes), "ci95_low": low, "ci95_high": high,
                         "mean_steps": float(np.mean([e.length for e in episodes])),
                         "failed_seeds": [e.seed for e in episodes if not e.success],
                         "seconds": time.perf_counter() - start})
    report("experts", rows, ["task", "action_mode", "episodes", "success_rate", "ci95_low", "ci95_high", "seconds"])


if __name__ == "__main__":
    main()
