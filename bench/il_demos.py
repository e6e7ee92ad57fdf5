"""Success against the number of demonstrations for BC, ACT and Diffusion Policy, and their training speed.

Each (policy, demos) cell trains `tidyarm train-il` on the first N scripted expert episodes of `--task`
(state inputs: observation.state + observation.environment_state) for the policy's step budget, then runs
`tidyarm eval`'s evaluation on unseen seeds. The table gives success with its 95% Wilson interval, the CPU
training time (optimizer steps only; demo recording and evaluation excluded) and optimizer steps per second.
A cell whose run directory already holds a finished policy is evaluated without retraining.

Run (each cell is minutes to tens of minutes on one CPU thread):
  .venv/bin/python bench/il_demos.py --task place --demos 10 25 50 --policies bc act diffusion
  .venv/bin/python bench/il_demos.py --policies act --demos 50 --eval-episodes 100
diffusion is the default (transformer) denoiser; diffusion-unet is the U-Net, which docs/imitation.md's
demo-count table measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

from tidyarm.eval import evaluate, resolve_policy  # noqa: E402
from tidyarm.il.config import TrainILConfig  # noqa: E402
from tidyarm.il.diffusion import DiffusionConfig  # noqa: E402
from tidyarm.il.train import train_il  # noqa: E402
from tidyarm.rl.checkpoint import find_checkpoint, read_json  # noqa: E402
from tidyarm.rl.logger import read_metrics  # noqa: E402

# Each policy's defaults (their step budgets and learning rates are the recipes measured in docs/imitation.md).
RECIPES = {**{policy: TrainILConfig(policy=policy) for policy in ("bc", "act", "diffusion")},
           "diffusion-unet": TrainILConfig(policy="diffusion", diffusion=DiffusionConfig(denoiser="unet"))}


def run_cell(policy: str, demos: int, args: argparse.Namespace) -> dict:
    run_dir = args.runs / f"{args.task}-{policy}-{demos}demos"
    config = dataclasses.replace(RECIPES[policy], dataset=f"expert:{args.task}:{max(args.demos)}", episodes=demos,
                                 run_dir=run_dir, threads=args.threads, eval_episodes=10, checkpoint_every=1_000)
    if args.steps:
        config = dataclasses.replace(config, steps=args.steps)
    finished = (run_dir / "policy.json").is_file() and read_json(run_dir / "policy.json")["step"] >= config.total_steps
    if not finished:
        train_il(config)
    meta = read_json(find_checkpoint(run_dir) / "meta.json")
    rates = [value for _, value in read_metrics(run_dir / "metrics.csv")["train/steps_per_s"]]
    summary = evaluate(resolve_policy(str(run_dir)), args.eval_episodes, video_episodes=0)
    low, high = summary["success_ci95"]
    return {"policy": policy, "demos": demos, "steps": meta["step"], "success": summary["success_rate"],
            "ci95": f"{low:.2f}-{high:.2f}", "train_min": meta["train_seconds"] / 60,
            "steps_per_s": sum(rates) / len(rates), "eval_episodes": args.eval_episodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="place")
    parser.add_argument("--policies", nargs="+", default=["bc", "act", "diffusion"], choices=list(RECIPES))
    parser.add_argument("--demos", nargs="+", type=int, default=[10, 25, 50])
    parser.add_argument("--steps", type=int, default=0, help="override every recipe's step budget (0: recipes)")
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-il"))
    parser.add_argument("--name", default="il_demos")
    args = parser.parse_args()
    rows = []
    for policy in args.policies:
        for demos in sorted(args.demos):
            rows.append(run_cell(policy, demos, args))
            print(json.dumps(rows[-1]))
    report(args.name, rows, ["policy", "demos", "steps", "success", "ci95", "train_min", "steps_per_s",
                             "eval_episodes"])


if __name__ == "__main__":
    main()
