"""How much of a HIL training run would the scripted intervener take, for a given policy and rule setting?

Plays HIL training episodes exactly as the actor does (`play_episode`: sampled actions, the reward classifier
ending the episode after `success_frames` positive frames, the intervener stepping in) with the policy frozen,
once per intervener setting on the same scenes. Per setting: the share of steps intervened, the share of
episodes with any intervention, classifier and oracle success, and the takeovers by the rule that called them.
Unlike bench/intervener_triggers.py (rules only watching), takeovers here change what happens next, so a rule
that hands the arm back in a bad state shows up as repeated calls.

Run: MUJOCO_GL=egl .venv/bin/python bench/intervener_replay.py --policy pretrained:lift-pixels \
         --classifier RUNS/reward-lift --episodes 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import report  # noqa: E402

from tidyarm.hil.actor import make_hil_env, play_episode  # noqa: E402
from tidyarm.hil.config import HILConfig  # noqa: E402
from tidyarm.hil.intervention import ScriptedIntervener  # noqa: E402
from tidyarm.hil.learner import intervention_share  # noqa: E402
from tidyarm.rl.pixel_actor import pixel_action  # noqa: E402

SEED = 3000  # scenes apart from training (0..), the trigger bench (2000..) and deploy's evaluation (1,000,000..)
SETTINGS = {"defaults (stuck in 8 steps, drive until held)": {},
            "fixed 15-step takeovers": {"until_held": False}, "stuck in 16 steps": {"stuck_steps": 16},
            "no stuck rule": {"stuck_steps": 10**6}}


class CountingIntervener(ScriptedIntervener):
    """The scripted intervener, counting its takeovers by the rule that called them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.takeovers: Counter[str] = Counter()

    def _reason(self):
        reason = super()._reason()
        if reason is not None:
            self.takeovers[reason] += 1
        return reason


def replay(env, actor, setting: dict, episodes: int) -> dict:
    intervener = CountingIntervener(**setting)
    torch.manual_seed(0)  # the same action noise for every setting, until the settings' choices diverge

    def act(obs, deterministic):
        return pixel_action(actor, obs, deterministic, torch.device("cpu"))

    stats = [play_episode(env, act, intervener, "train", SEED + index)["stats"] for index in range(episodes)]
    return {"step_share": intervention_share(stats),
            "episodes_intervened": float(np.mean([s["intervention_rate"] > 0 for s in stats])),
            "success": float(np.mean([s["success"] for s in stats])),
            "oracle_success": float(np.mean([s["oracle_success"] for s in stats])),
            "mean_steps": float(np.mean([s["steps"] for s in stats])),
            "takeovers": json.dumps(dict(sorted(intervener.takeovers.items())))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="pretrained:lift-pixels")
    parser.add_argument("--classifier", required=True, help="a reward classifier run directory")
    parser.add_argument("--robot", default="sim-gap")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=0.5, help="the classifier's success threshold")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = HILConfig(init=args.policy, classifier=args.classifier, robot=args.robot,
                       max_episode_steps=args.max_steps, classifier_threshold=args.threshold)
    env, loaded = make_hil_env(config)
    rows = [{"setting": name, **replay(env, loaded.policy.actor, setting, args.episodes), "policy": args.policy}
            for name, setting in SETTINGS.items()]
    env.close()
    report("intervener_replay", rows, ["setting", "step_share", "episodes_intervened", "success", "oracle_success",
                                       "mean_steps", "takeovers"])


if __name__ == "__main__":
    main()
