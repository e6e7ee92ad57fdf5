"""Evaluate any policy (trained run, pretrained, scripted expert) on seeds training never used.

Reports the success rate with a 95% Wilson interval, mean return and length, writes results JSON and
an mp4 of the first episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tidyarm.rl.checkpoint import write_json
from tidyarm.rl.policy_io import LoadedPolicy, check_policy_fits_env, load_policy
from tidyarm.rollout import POLICY_NAMES, make_policy, run_episodes, video_frame
from tidyarm.sim.env import EnvConfig, So101Env
from tidyarm.stats import wilson_interval
from tidyarm.video import write_mp4

EVAL_SEED = 1_000_000  # shared with training's periodic evaluation; training resets never use these seeds
PRETRAINED = Path(__file__).parent / "pretrained"


@dataclass
class PolicySpec:
    """Where a policy comes from: a saved policy (with its env) or a built-in policy name."""

    name: str
    loaded: LoadedPolicy | None = None

    def env_config(self, task: str | None, randomize: bool = True) -> EnvConfig:
        if self.loaded:
            config = self.loaded.env_config
            if task and task != config.task:
                raise ValueError(f"{self.name} was trained on task {config.task!r}, not {task!r}")
            return config
        return EnvConfig(task=task or "lift", randomize=randomize)

    def build(self, env: So101Env) -> Callable:
        if self.loaded:
            check_policy_fits_env(self.loaded, env, self.name)
            return self.loaded
        return make_policy(self.name, env)


def resolve_policy(spec: str) -> PolicySpec:
    """'expert' | 'random' | 'still' | 'pretrained:<task>' | a run directory or exported-policy directory."""
    if spec in POLICY_NAMES:
        return PolicySpec(spec)
    if spec.startswith("pretrained:"):
        task = spec.split(":", 1)[1]
        directory = PRETRAINED / task
        if not (directory / "policy.json").is_file():
            available = sorted(p.parent.name for p in PRETRAINED.glob("*/policy.json"))
            raise ValueError(f"no pretrained policy for {task!r}; available: {available}")
        return PolicySpec(spec, load_policy(directory))
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"policy {spec!r} is neither a built-in ({list(POLICY_NAMES)}), 'pretrained:<task>', "
                         "nor an existing run directory")
    return PolicySpec(str(path), load_policy(path))


def evaluate(spec: PolicySpec, episodes: int, task: str | None = None, out_dir: Path | None = None,
             video_episodes: int = 3, seed: int = EVAL_SEED) -> dict:
    """Run `episodes` episodes; write results.json (and eval.mp4) into `out_dir` when given."""
    if episodes < 1:
        raise ValueError(f"episodes = {episodes}: expected at least 1")
    env = spec.env_config(task).make()
    policy = spec.build(env)
    results, _ = run_episodes(env, policy, episodes, seed=seed)
    successes = sum(e.success for e in results)
    low, high = wilson_interval(successes, episodes)
    summary = {"policy": spec.name, "task": env.task_name, "episodes": episodes, "seed": seed,
               "success_rate": successes / episodes, "success_ci95": [low, high],
               "mean_return": float(np.mean([e.episode_return for e in results])),
               "mean_length": float(np.mean([e.length for e in results])),
               "failed_seeds": [e.seed for e in results if not e.success]}
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        if video_episodes:
            summary["video"] = str(record_video(spec, env, min(video_episodes, episodes), seed, out_dir / "eval.mp4"))
        write_json(out_dir / "eval_results.json", summary)
    return summary


def record_video(spec: PolicySpec, env: So101Env, episodes: int, seed: int, path: Path) -> Path:
    _, frames = run_episodes(env, spec.build(env), episodes, seed=seed, frame_fn=video_frame)
    return write_mp4(frames, path, env.control_hz)
