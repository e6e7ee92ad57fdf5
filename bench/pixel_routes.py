"""Success against env steps for the three pixel routes on one task: visual SAC, DrQ-v2 and distillation.

Each route trains with the given budget (or, with --from-runs, an existing run directory is read instead) and
is evaluated on 20 unseen seeds along the way. The table gives, per route, the env steps and wall minutes to
the first evaluation at or above 90% (minutes scaled from the run's total at a constant rate), the best and
the last evaluation; a PNG puts the three curves on one env-step axis. For distillation the env steps are the
labelled observations collected (evaluation episodes are not counted, as for the RL routes).

Run (hours on 2 CPU cores):
  .venv/bin/python bench/pixel_routes.py --task lift --budget 50000
  .venv/bin/python bench/pixel_routes.py --from-runs vsac=runs/vsac-lift distill=runs/lift-dagger   # read only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import RESULTS, report  # noqa: E402

from tidyarm.rl.distill import DistillConfig, distill  # noqa: E402
from tidyarm.rl.logger import read_metrics  # noqa: E402
from tidyarm.rl.train import TrainConfig, train  # noqa: E402

ROUTES = ("vsac", "drqv2", "distill")


def train_route(route: str, args: argparse.Namespace) -> tuple[Path, float]:
    """Train one route into runs/<route>-<task>; returns the run directory and its wall minutes."""
    run_dir = args.runs / f"{route}-{args.task}"
    start = time.perf_counter()
    if route == "distill":
        # The recipe of the run in docs/pixels.md's side-by-side table (not today's defaults).
        config = DistillConfig(teacher=args.teacher, method="dagger", student=args.student, iterations=args.rounds,
                               episodes_per_iteration=24, beta_decay=0.5, fit_steps=2000, reset_frames=0,
                               threads=args.threads, run_dir=run_dir)
        distill(config)
    else:
        # The measured recipes: visual SAC as pretrained:lift-pixels; DrQ-v2 with its paper's 3 stacked frames.
        base = TrainConfig(algo=route, obs="pixels")
        if route == "vsac":
            base = dataclasses.replace(base, vsac=dataclasses.replace(base.vsac, batch_size=128, update_every=2))
        else:
            base = dataclasses.replace(base, pixels=dataclasses.replace(base.pixels, frame_stack=3))
        config = dataclasses.replace(base, task=args.task, total_steps=args.budget, eval_every=args.eval_every,
                                     eval_episodes=20, threads=args.threads, run_dir=run_dir)
        train(config)
    return run_dir, (time.perf_counter() - start) / 60


def run_minutes(run_dir: Path) -> float | None:
    """Wall minutes of a finished run, from what it logged (None if it did not say)."""
    summary = run_dir / "summary.json"
    if summary.is_file():
        return json.loads(summary.read_text())["wall_seconds_this_session"] / 60
    minutes = read_metrics(run_dir / "metrics.csv").get("train/minutes")
    return minutes[-1][1] if minutes else None


def summarize(route: str, run_dir: Path, minutes: float | None) -> dict:
    curve = read_metrics(run_dir / "metrics.csv").get("eval/success_rate", [])
    if not curve:
        raise ValueError(f"{run_dir / 'metrics.csv'} has no eval/success_rate: the run never evaluated")
    steps_to_90 = next((step for step, success in curve if success >= 0.9), None)
    last_step = curve[-1][0]
    to_90 = minutes * steps_to_90 / last_step if minutes and steps_to_90 else None
    return {"route": route, "run": str(run_dir), "env_steps": last_step, "steps_to_90": steps_to_90,
            "minutes_to_90": to_90, "best_eval": max(success for _, success in curve), "last_eval": curve[-1][1],
            "minutes": minutes, "curve": curve}


def plot(rows: list[dict], task: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for row in rows:
        steps, success = zip(*row["curve"], strict=True)
        axis.plot(steps, success, marker="o", label=row["route"])
    axis.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    axis.set(xlabel="env steps", ylabel="eval success (20 episodes)", ylim=(-0.02, 1.02), title=f"{task}: pixel routes")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="lift")
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES)
    parser.add_argument("--budget", type=int, default=50_000, help="env steps for visual SAC and DrQ-v2")
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--teacher", default="pretrained:lift", help="the distillation teacher")
    parser.add_argument("--student", default="estimator", choices=("actor", "estimator"))
    parser.add_argument("--rounds", type=int, default=10, help="distillation rounds of 24 episodes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-pixels"))
    parser.add_argument("--from-runs", nargs="+", metavar="ROUTE=RUN_DIR", help="read these runs, train nothing")
    parser.add_argument("--name", default="pixel_routes", help="results file bench/results/<name>.json")
    args = parser.parse_args()

    if args.from_runs:
        pairs = [item.split("=", 1) for item in args.from_runs]
        if any(len(pair) != 2 or pair[0] not in ROUTES for pair in pairs):
            parser.error(f"--from-runs takes ROUTE=RUN_DIR with ROUTE in {list(ROUTES)}; got {args.from_runs}")
        rows = [summarize(route, Path(run), run_minutes(Path(run))) for route, run in pairs]
    else:
        rows = [summarize(route, *train_route(route, args)) for route in args.routes]
    report(args.name, rows, ["route", "env_steps", "steps_to_90", "minutes_to_90", "best_eval", "last_eval",
                             "minutes", "run"])
    print(f"curves: {plot(rows, args.task, RESULTS / f'{args.name}.png')}")


if __name__ == "__main__":
    main()
