"""Inverse RL: imitation return / expert return for apprenticeship learning and GAIL on reach and lift.

Each run trains with `tidyarm.il.irl_train.run_irl` (one thread) and compares the chosen policy with the
scripted expert on the same unseen seeds (true task reward). Reach trains from the learned reward alone
(no behaviour-cloning warm start or anchor: the demonstrations only sit in the offline buffer, relabelled);
lift keeps SAC's default BC warm start and anchor, which is how lift becomes learnable in tens of thousands of
steps, so its figure measures IRL on top of a cloned start.

Run:  .venv/bin/python bench/irl.py --tasks reach lift --methods apprenticeship gail --steps reach=15000 lift=15000
      .venv/bin/python bench/irl.py --summaries RUN_DIR ...   (tabulate finished runs instead of training)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

from tidyarm.il.adversarial import DISCRIMINATOR_INPUTS, REWARD_FORMS, GAILConfig  # noqa: E402
from tidyarm.il.irl_train import IRL_SAC, IRLConfig, run_irl  # noqa: E402

# Per-task SAC settings (see the module docstring for why reach drops the BC terms).
TASK_SAC = {"reach": dataclasses.replace(IRL_SAC, bc_warmup_steps=0, bc_weight=0.0, critic_warmup_steps=0),
            "lift": IRL_SAC}
COLUMNS = ["task", "method", "gail_inputs", "gail_reward", "steps", "imitation_return", "expert_return", "return_ratio",
           "imitation_success", "expert_success", "train_minutes", "run_dir"]


def row(summary: dict, run_dir: Path) -> dict:
    return {**{key: summary[key] for key in COLUMNS if key in summary},
            "train_minutes": summary["train_wall_seconds"] / 60, "run_dir": str(run_dir),
            "reached_0.85": summary["return_ratio"] >= 0.85}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["reach", "lift"])
    parser.add_argument("--methods", nargs="+", default=["apprenticeship", "gail"])
    parser.add_argument("--steps", nargs="+", default=["reach=15000", "lift=15000"], help="TASK=STEPS budgets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gail-inputs", default="state_action", choices=DISCRIMINATOR_INPUTS, help="what D sees")
    parser.add_argument("--gail-reward", default="logit", choices=REWARD_FORMS, help="reward from D's logit")
    parser.add_argument("--final-episodes", type=int, default=50)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-irl"))
    parser.add_argument("--summaries", nargs="*", type=Path, help="finished run directories to tabulate")
    parser.add_argument("--name", default="irl", help="results file bench/results/<name>.json")
    args = parser.parse_args()
    rows = []
    if args.summaries:
        for run_dir in args.summaries:
            rows.append(row(json.loads((run_dir / "irl_summary.json").read_text()), run_dir))
    else:
        budgets = {task: int(steps) for task, steps in (item.split("=") for item in args.steps)}
        gail = GAILConfig(inputs=args.gail_inputs, reward=args.gail_reward)
        for task in args.tasks:
            for method in args.methods:
                run_dir = args.runs / f"{method}-{task}-seed{args.seed}"
                config = IRLConfig(method=method, task=task, total_steps=budgets[task], seed=args.seed,
                                   final_episodes=args.final_episodes, threads=1, run_dir=run_dir,
                                   sac=TASK_SAC[task], gail=gail)
                rows.append(row(run_irl(config), run_dir))
    report(args.name, rows, COLUMNS + ["reached_0.85"])


if __name__ == "__main__":
    main()
