"""`tidyarm <command>`: thin wrappers that parse a typed config and call library functions."""

from __future__ import annotations

import os
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


def main() -> None:
    # Headless machines render through EGL; this must be set before mujoco is imported.
    os.environ.setdefault("MUJOCO_GL", "egl")
    command = tyro.extras.subcommand_cli_from_dict(
        {"rollout": Rollout, "gallery": Gallery}, description="tidyarm: SO-101 sim, learning and deployment tools."
    )
    if isinstance(command, Rollout):
        run_rollout(command)
    elif isinstance(command, Gallery):
        run_gallery(command)


def run_rollout(config: Rollout) -> None:
    from tidyarm.rollout import make_policy, run_episodes
    from tidyarm.sim import Randomization, So101Env
    from tidyarm.video import tile, write_mp4

    randomization = None if config.randomize else Randomization.off()
    env = So101Env(config.task, action_mode=config.action_mode, randomization=randomization)
    policy = make_policy(config.policy, env)
    frame_fn = None
    if config.video:
        def frame_fn(env):
            return tile([env.render_camera("front", (240, 320)), env.render_camera("wrist", (240, 320))], 2)
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


