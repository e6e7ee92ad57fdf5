"""Steps to 90% evaluation success for SAC from state, per task, with and without scripted demos.

Each run trains with the default config, evaluates every --eval-every steps on 20 unseen seeds and stops
at the first evaluation >= 90%. Also reports the share of wall time spent stepping the env vs updating.

Run: .venv/bin/python bench/rl_steps_to_success.py --tasks reach lift place --seeds 0 1 2 --demos 0 10
(hours on 2 CPU cores; pass fewer tasks/seeds for a quick look).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

from tidyarm.rl.train import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="+", default=["reach", "lift", "place"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--demos", nargs="+", type=int, default=[0, 10])
    parser.add_argument("--budget", type=int, default=100_000, help="max env steps per run")
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--name", default="rl_steps_to_success", help="results file bench/results/<name>.json")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    rows = []
    for task in args.tasks:
        for demos in args.demos:
            for seed in args.seeds:
                config = dataclasses.replace(TrainConfig(), task=task, demos=demos, seed=seed,
                                             total_steps=args.budget, eval_every=args.eval_every, eval_episodes=20,
                                             stop_success=0.9, checkpoint_every=args.budget, threads=args.threads,
                                             run_dir=args.runs / f"{task}-demos{demos}-seed{seed}")
                start = time.perf_counter()
                summary = json.loads((train(config) / "summary.json").read_text())
                rows.append({"task": task, "demos": demos, "seed": seed, "steps_to_90": summary["steps_to_90"],
                             "minutes": (time.perf_counter() - start) / 60, "env_share": summary["env_share"],
                             "update_share": summary["update_share"], "budget": args.budget})
                report(args.name, rows, ["task", "demos", "seed", "steps_to_90", "minutes", "env_share",
                                         "update_share"])


if __name__ == "__main__":
    main()
