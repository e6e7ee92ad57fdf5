"""Zero-shot transfer: a sim-trained pixel policy in the simulator it trained in vs on the simulated robot.

Rows, all on the same scene seeds (tidyarm.eval's evaluation seeds, which training never used):
- sim (randomized): So101Env with the training randomization on, success from the task predicate;
- robot sim (no gap): SimRobot + RobotEnv with no reality gap, oracle success;
- robot sim-gap-mild and robot sim-gap: the two held-out gap presets, oracle success;
- with --ablate, the sim-gap preset split into its parts (physics, servo, camera pose, colour response) to see
  which part of the gap costs the most;
- with --expert, the scripted expert (privileged simulator state, the HIL-SERL scripted intervener) on the
  robot with no gap and with sim-gap: how good the intervener is under the gap.
Success has a 95% Wilson interval; wall is the row's wall time on one thread.

Run: MUJOCO_GL=egl .venv/bin/python bench/zero_shot.py --episodes 20 [--ablate] [--expert]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from common import report  # noqa: E402

from tidyarm.eval import EVAL_SEED, evaluate, resolve_policy  # noqa: E402
from tidyarm.robot.deploy import _episode, load_pixel_policy  # noqa: E402
from tidyarm.robot.gap import RealityGap  # noqa: E402
from tidyarm.robot.robot_env import RobotEnv  # noqa: E402
from tidyarm.robot.sim_robot import SimRobot, scripted_expert  # noqa: E402
from tidyarm.stats import wilson_interval  # noqa: E402

GAP = RealityGap.preset("sim-gap")
NONE = RealityGap()
# The preset's fields by group, for --ablate.
GROUPS = {
    "physics": ("object_friction_scale", "object_mass_scale", "kp_scale", "kv_scale", "damping_scale"),
    "servo": ("deadband_deg", "backlash_deg", "latency_ticks", "joint_noise"),
    "camera pose": ("front_camera_shift", "front_camera_tilt_deg", "wrist_camera_shift", "wrist_camera_tilt_deg"),
    "colour": ("color_gain", "gamma", "image_noise"),
}


def robot_row(name: str, gap: RealityGap, loaded, episodes: int) -> dict:
    config = loaded.env_config
    side = config.image_size * config.supersample
    robot = SimRobot(config.task, gap, camera_size=(side, side), cameras=config.cameras,
                     control_hz=config.control_hz)
    env = RobotEnv(robot, config)
    start, inference, loop = time.perf_counter(), [], []
    results = [_episode(env, loaded, EVAL_SEED + index, inference, loop) for index in range(episodes)]
    env.close()
    successes = sum(r["oracle_success"] for r in results)
    return _row(name, successes, episodes, time.perf_counter() - start, robot.safety.counts)


def expert_row(name: str, gap: RealityGap, loaded, episodes: int) -> dict:
    """The scripted expert (privileged state: the HIL-SERL scripted intervener) on the same robot and seeds."""
    config = loaded.env_config
    env = RobotEnv(SimRobot(config.task, gap, camera_size=(8, 8), cameras=config.cameras), config)
    start, successes = time.perf_counter(), 0
    for index in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + index)
        expert, success, done = scripted_expert(env), False, False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            success, done = success or info["oracle_success"], terminated or truncated
        successes += success
    env.close()
    return _row(name, successes, episodes, time.perf_counter() - start, env.robot.safety.counts)


def _row(name: str, successes: int, episodes: int, wall: float, safety: dict | None = None) -> dict:
    low, high = wilson_interval(successes, episodes)
    row = {"setting": name, "episodes": episodes, "success": successes / episodes, "ci95_low": low,
           "ci95_high": high, "wall_s": wall}
    if safety:
        row.update(step_clips=safety["clipped_step"], limit_clips=safety["clipped_limits"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="pretrained:lift-pixels")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--ablate", action="store_true", help="add one row per part of the sim-gap preset")
    parser.add_argument("--expert", action="store_true", help="add the scripted expert (privileged) on each robot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_pixel_policy(args.policy)
    rows = []
    start = time.perf_counter()
    summary = evaluate(resolve_policy(args.policy), args.episodes, seed=EVAL_SEED)
    rows.append(_row("sim (randomized)", round(summary["success_rate"] * args.episodes), args.episodes,
                     time.perf_counter() - start))
    rows.append(robot_row("robot sim (no gap)", NONE, loaded, args.episodes))
    rows.append(robot_row("robot sim-gap-mild", RealityGap.preset("sim-gap-mild"), loaded, args.episodes))
    rows.append(robot_row("robot sim-gap", GAP, loaded, args.episodes))
    if args.ablate:
        for group, names in GROUPS.items():
            gap = dataclasses.replace(NONE, **{name: getattr(GAP, name) for name in names})
            rows.append(robot_row(f"robot gap: {group} only", gap, loaded, args.episodes))
    if args.expert:
        rows.append(expert_row("expert on robot sim (no gap)", NONE, loaded, args.episodes))
        rows.append(expert_row("expert on robot sim-gap", GAP, loaded, args.episodes))
    name = "zero_shot"
    report(name, [{**row, "policy": args.policy} for row in rows],
           ["setting", "episodes", "success", "ci95_low", "ci95_high", "step_clips", "limit_clips", "wall_s"])


if __name__ == "__main__":
    main()
