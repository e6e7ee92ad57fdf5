"""How well do the scripted intervener's rules pick the episodes that need a person?

The policy drives alone (sampled actions, as in HIL training episodes) while the rules of `ScriptedIntervener`
only watch. Per rule and threshold: the episodes it would have fired in, how many of those the policy then
finished unaided (false alarms: steps a person would have driven for nothing), its precision, and the share of
the policy's failures it catches. A rule with low precision inflates the intervention rate without helping.

Run: MUJOCO_GL=egl .venv/bin/python bench/intervener_triggers.py --policy pretrained:lift-pixels --episodes 60
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import report  # noqa: E402

from tidyarm.hil.intervention import ScriptedIntervener  # noqa: E402
from tidyarm.rl.pixel_actor import pixel_action  # noqa: E402
from tidyarm.robot.deploy import load_pixel_policy, make_robot_env  # noqa: E402

SEED = 2000  # scenes apart from training (0..) and from tidyarm deploy's evaluation seeds (1,000,000..)
STUCK_WINDOWS = (8, 16, 24)  # steps over which the tool's travel is measured


def watch_episode(env, actor, watcher: ScriptedIntervener, seed: int) -> dict:
    """One unaided episode; the signals the rules read: the cube's largest push (m) and the tool's least travel
    over each stuck window (m) before the cube is held, and the step it was first held."""
    obs, _ = env.reset(seed=seed)
    watcher.reset(env)
    pushes, travels, first_hold, tools, success, done = [], {w: [] for w in STUCK_WINDOWS}, None, [], False, False
    while not done:
        holding = watcher.holding()
        if holding and first_hold is None:
            first_hold = len(tools)
        tools.append(watcher.tool_point())
        if not holding:
            pushes.append(watcher.pushed())
            for window in STUCK_WINDOWS:
                if len(tools) > window:
                    travels[window].append(np.linalg.norm(tools[-1] - tools[-1 - window]))
        obs, _, terminated, truncated, info = env.step(pixel_action(actor, obs, False, torch.device("cpu")))
        success = success or info["oracle_success"]
        done = terminated or truncated or success
    return {"success": success, "max_push": max(pushes, default=0.0),
            "min_travel": {w: min(t, default=np.inf) for w, t in travels.items()},
            "first_hold": len(tools) if first_hold is None else first_hold}


def rule_row(rule: str, episodes: list[dict], fires) -> dict:
    fired = [e for e in episodes if fires(e)]
    false_alarms = sum(e["success"] for e in fired)
    failures = sum(not e["success"] for e in episodes)
    return {"rule": rule, "fires": len(fired), "false_alarms": false_alarms,
            "precision": 1 - false_alarms / len(fired) if fired else float("nan"),
            "failures_caught": f"{len(fired) - false_alarms}/{failures}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="pretrained:lift-pixels")
    parser.add_argument("--robot", default="sim-gap")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--max-steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    loaded = load_pixel_policy(args.policy)
    env = make_robot_env(args.robot, loaded, max_steps=args.max_steps)
    watcher = ScriptedIntervener()
    episodes = [watch_episode(env, loaded.policy.actor, watcher, SEED + index) for index in range(args.episodes)]
    env.close()
    print(f"{args.policy} on {args.robot}: {sum(e['success'] for e in episodes)}/{args.episodes} unaided successes")
    rows = [rule_row(f"pushing > {d * 100:.0f} cm", episodes, lambda e, d=d: e["max_push"] > d)
            for d in (0.03, 0.04, 0.05, 0.06)]
    rows += [rule_row(f"stuck < {d * 100:.1f} cm in {w} steps", episodes, lambda e, d=d, w=w: e["min_travel"][w] < d)
             for w in STUCK_WINDOWS for d in (0.01, 0.005)]
    rows += [rule_row(f"late: no hold by step {k}", episodes, lambda e, k=k: e["first_hold"] >= k)
             for k in range(40, args.max_steps, 10)]
    report("intervener_triggers", [{**row, "policy": args.policy, "robot": args.robot} for row in rows],
           ["rule", "fires", "false_alarms", "precision", "failures_caught"])


if __name__ == "__main__":
    main()
