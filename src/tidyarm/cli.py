"""`tidyarm <command>`: thin wrappers that parse a typed config and call library functions."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tyro


@dataclass(frozen=True)
class Rollout:
    """Run a policy in the simulator, print its success rate and optionally write a video."""

    task: str = "lift"
    """Task name: reach, lift or place."""
    policy: str = "expert"
    """Policy: expert (scripted, privileged state), random or still."""
    episodes: int = 3
    """Number of episodes (seeds seed .. seed+episodes-1)."""
    seed: int = 0
    """Seed of the first episode."""
    action_mode: str = "ee"
    """Action mode: ee, joint or joint_delta."""
    randomize: bool = True
    """Domain randomization on (the default) or off."""
    video: Path | None = None
    """Write an mp4 here: front camera beside the wrist camera."""


@dataclass(frozen=True)
class Gallery:
    """Save a PNG grid of randomized front and wrist camera frames: what a pixel policy sees."""

    task: str = "lift"
    """Task name: reach, lift or place."""
    episodes: int = 8
    """Number of randomized resets to show (one row each)."""
    size: int = 128
    """Image height and width in pixels."""
    seed: int = 0
    """Seed of the first reset."""
    out: Path = Path("runs/gallery.png")
    """Output PNG path."""


@dataclass(frozen=True)
class Eval:
    """Evaluate a policy: success rate with a 95% Wilson interval, returns, an mp4 and results JSON."""

    run_dir: tyro.conf.Positional[Path | None] = None
    """Run directory of a trained policy (omit when --policy is given)."""
    policy: str | None = None
    """Instead of a run: expert, random, still or pretrained:<task>."""
    task: str | None = None
    """Task for built-in policies (saved policies know their own task)."""
    episodes: int = 100
    """Evaluation episodes, on seeds training never used."""
    video_episodes: int = 3
    """Episodes recorded into eval.mp4 (0 for none)."""
    out: Path | None = None
    """Where to write eval_results.json and eval.mp4 (default: the run directory, or runs/eval-<policy>)."""


def main() -> None:
    # Headless machines render through EGL; this must be set before mujoco is imported.
    os.environ.setdefault("MUJOCO_GL", "egl")
    commands = _commands(sys.argv[1:])
    command = tyro.extras.subcommand_cli_from_dict(
        {name: config_class for name, (config_class, _) in commands.items()},
        description="tidyarm: SO-101 sim, learning and deployment tools.",
    )
    run = next(run for config_class, run in commands.values() if isinstance(command, config_class))
    run(command)


def _commands(argv: list[str]) -> dict[str, tuple[type, Callable]]:
    """Subcommand -> (its typed config, the function that runs it). Imported here, not at module level, so
    that setting MUJOCO_GL above happens before anything imports mujoco."""
    from tidyarm.data.session import RecordCommand
    from tidyarm.hil.command import HILCommand
    from tidyarm.il.config import TrainILCommand
    from tidyarm.il.irl_train import IRLCommand
    from tidyarm.reward.command import TrainRewardCommand, run_train_reward
    from tidyarm.rl.distill import DistillCommand
    from tidyarm.rl.train import TrainCommand
    from tidyarm.robot.deploy import DeployCommand

    return {"train": (TrainCommand, lambda command: run_train(command, argv)),
            "distill": (DistillCommand, run_distill),
            "record": (RecordCommand, run_record),
            "train-il": (TrainILCommand, lambda command: run_train_il(command, argv)),
            "irl": (IRLCommand, run_irl_command),
            "train-reward": (TrainRewardCommand, run_train_reward),
            "hil": (HILCommand, run_hil_command),
            "deploy": (DeployCommand, run_deploy),
            "eval": (Eval, run_eval),
            "rollout": (Rollout, run_rollout),
            "gallery": (Gallery, run_gallery)}


def run_train(command, argv: list[str]) -> None:
    from tidyarm.rl.train import resume, train

    if command.resume:
        # The run's own config.json decides everything; only a --total-steps typed on the command line
        # extends it (even one equal to the default, which is why argv is read rather than the value).
        typed = any(arg.split("=")[0] in ("--total-steps", "--total_steps") for arg in argv)
        run_dir = resume(command.resume, command.config.total_steps if typed else None)
    else:
        run_dir = train(command.config)
    print(f"run directory: {run_dir}")


def run_irl_command(command) -> None:
    from tidyarm.il.irl_train import run_irl

    summary = run_irl(command.config)
    print(f"{summary['method']} on {summary['task']}: imitation return {summary['imitation_return']:.2f} / expert "
          f"{summary['expert_return']:.2f} = {summary['return_ratio']:.3f} over {summary['episodes']} episodes "
          f"(success {summary['imitation_success']:.0%} vs {summary['expert_success']:.0%}); "
          f"{summary['train_wall_seconds'] / 60:.1f} min on {summary['threads']} thread(s)")


def run_hil_command(command) -> None:
    from tidyarm.hil.command import run_hil

    summary = run_hil(command)
    if summary is not None:
        print(f"HIL-SERL: {summary['env_steps']} robot steps ({summary['robot_hours'] * 60:.1f} min of robot time), "
              f"{summary['episodes']} episodes, {summary['updates']} updates in "
              f"{summary['wall_seconds_this_session'] / 60:.1f} min; actor restarts {summary['actor_restarts']}")
        print(f"curves: {summary['curves']}; policy: {command.resume or command.config.run_dir}/policy.json")


def run_deploy(command) -> None:
    from tidyarm.robot.deploy import deploy

    summary = deploy(command)
    low, high = summary["oracle_success_ci95"]
    loop = summary["loop_ms"]
    print(f"{summary['policy']} on robot {command.robot}: oracle success {summary['oracle_success_rate']:.0%} "
          f"(95% CI {low:.0%}-{high:.0%}) over {summary['episodes']} episodes"
          + (f", {summary['stopped']}" if summary["stopped"] else ""))
    print(f"loop {loop['p50']:.1f} ms median, {loop['p95']:.1f} ms p95 (period {summary['control_period_ms']:.0f} ms, "
          f"{summary['over_budget_ticks']}/{summary['ticks']} ticks over); safety {summary['safety']}")
    print(f"results: {summary['path']}")


def run_train_il(command, argv: list[str]) -> None:
    from tidyarm.il.train import resume_il, train_il

    if command.resume:  # as for train: only a typed --steps extends the resumed run
        typed = any(arg.split("=")[0] == "--steps" for arg in argv)
        run_dir = resume_il(command.resume, command.config.steps if typed else None)
    else:
        run_dir = train_il(command.config)
    print(f"run directory: {run_dir}\nevaluate: tidyarm eval {run_dir} --episodes 100")


def run_record(command) -> None:
    from tidyarm.data.session import record
    from tidyarm.teleop.base import TeleopUnavailable

    try:
        summary = record(command)
    except TeleopUnavailable as error:  # a missing package or device: say what to do, no traceback
        raise SystemExit(f"tidyarm record: {error}") from error
    print(f"recorded {summary.line()}")
    for note in summary.notes:
        print(note)


def run_distill(command) -> None:
    from tidyarm.rl.distill import distill, resume_distill

    run_dir = resume_distill(command.resume) if command.resume else distill(command.config)
    print(f"run directory: {run_dir}")


def run_eval(config: Eval) -> None:
    from tidyarm.eval import evaluate, resolve_policy

    if (config.run_dir is None) == (config.policy is None):
        raise SystemExit("tidyarm eval: give either a run directory or --policy (expert, random, still, "
                         "pretrained:<task>)")
    spec = resolve_policy(str(config.run_dir) if config.run_dir else config.policy)
    out = config.out or config.run_dir or Path("runs") / f"eval-{config.policy.replace(':', '-')}"
    summary = evaluate(spec, config.episodes, config.task, out, config.video_episodes)
    low, high = summary["success_ci95"]
    print(f"{summary['policy']} on {summary['task']}: success {summary['success_rate']:.1%} "
          f"(95% CI {low:.1%}-{high:.1%}) over {summary['episodes']} episodes, mean return "
          f"{summary['mean_return']:.2f}, mean length {summary['mean_length']:.1f}")
    print(f"results: {out / 'eval_results.json'}" + (f", video: {summary['video']}" if "video" in summary else ""))


def run_rollout(config: Rollout) -> None:
    from tidyarm.rollout import make_policy, run_episodes, video_frame
    from tidyarm.sim import Randomization, So101Env
    from tidyarm.video import write_mp4

    randomization = None if config.randomize else Randomization.off()
    env = So101Env(config.task, action_mode=config.action_mode, randomization=randomization)
    policy = make_policy(config.policy, env)
    frame_fn = video_frame if config.video else None
    episodes, frames = run_episodes(env, policy, config.episodes, config.seed, frame_fn)
    for episode in episodes:
        print(f"seed {episode.seed:4d}  success {episode.success!s:5}  return {episode.episode_return:8.2f}  "
              f"steps {episode.length}")
    successes = sum(e.success for e in episodes)
    print(f"{config.policy} on {config.task}: {successes}/{len(episodes)} successful")
    if config.video:
        print(f"video: {write_mp4(frames, config.video, env.control_hz)}")


def run_gallery(config: Gallery) -> None:
    from tidyarm.sim import So101Env
    from tidyarm.video import save_png, tile

    env = So101Env(config.task)
    images = []
    for index in range(config.episodes):
        env.reset(seed=config.seed + index)
        size = (config.size, config.size)
        images += [env.render_camera("front", size), env.render_camera("wrist", size)]
    print(f"gallery: {save_png(tile(images, columns=4), config.out)}")


