"""`tidyarm irl`: inverse RL from scripted demonstrations, SAC as the learner, scored on the task's true reward.

Both methods run inside the ordinary SAC training loop (rl/train.py) through its `reward_model` hook: every
sampled batch, demonstrations included, is relabelled with the current learned reward, and the env's own
reward is used only to report. The run directory is a normal training run (config.json, metrics.csv with
eval/return = true return on unseen seeds, learning_curve.png, policy.safetensors + policy.json for
`tidyarm eval RUN_DIR`) plus irl_config.json and irl_summary.json: imitation return / expert return on the
same evaluation seeds, and the wall time.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro

from tidyarm.eval import EVAL_SEED, PolicySpec, evaluate, resolve_policy
from tidyarm.il.adversarial import GAILConfig, GAILReward
from tidyarm.il.apprenticeship import ApprenticeshipConfig, ApprenticeshipReward
from tidyarm.il.irl_reward import FEATURE_NAMES, LearnedRewardWrapper, StateFeatures, rollout_stats
from tidyarm.rl.checkpoint import write_json
from tidyarm.rl.demos import DEMO_SEED
from tidyarm.rl.policy_io import export_policy
from tidyarm.rl.sac import SACConfig
from tidyarm.rl.train import DEFAULT_SAC, TrainConfig, Trainer
from tidyarm.sim.env import EnvConfig
from tidyarm.sim.experts import make_expert

METHODS = ("apprenticeship", "gail")
ROLLOUT_SEED = 3_000_000  # feature-expectation rollouts: apart from training, demonstration and evaluation seeds
# The default SAC recipe with 1-step returns: a learned reward is relabelled per transition at sampling time.
IRL_SAC = dataclasses.replace(DEFAULT_SAC, n_step=1)


@dataclass(frozen=True)
class IRLConfig:
    """Inverse RL on a state task: apprenticeship learning (projection method) or off-policy GAIL."""

    method: str = "gail"
    """apprenticeship (feature-expectation matching, Abbeel & Ng 2004) or gail (adversarial, DAC-style)."""
    task: str = "reach"
    """Task: reach or lift."""
    total_steps: int = 15_000
    """Env steps of SAC in all (apprenticeship splits what follows learning_starts into equal iterations)."""
    demos: int = 100
    """Successful scripted-expert episodes: the expert data of both methods and SAC's offline buffer."""
    seed: int = 0
    """Seed of env, networks and sampling (>= 0)."""
    eval_every: int = 2_500
    """Periodic evaluation (true return and success on unseen seeds) every this many env steps."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation."""
    final_episodes: int = 50
    """Episodes of the final comparison of the learned policy with the expert (the same seeds for both)."""
    threads: int = 1
    """torch CPU threads."""
    run_dir: Path | None = None
    """Run directory (default runs/irl-<method>-<task>-seed<seed>)."""
    sac: tyro.conf.OmitArgPrefixes[SACConfig] = IRL_SAC
    """SAC / RLPD hyperparameters of the inner learner (n_step must be 1)."""
    apprenticeship: ApprenticeshipConfig = ApprenticeshipConfig()
    """Projection-method settings (method apprenticeship)."""
    gail: GAILConfig = GAILConfig()
    """Discriminator settings (method gail)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {list(METHODS)}")
        if self.task not in FEATURE_NAMES:
            raise ValueError(f"task {self.task!r}: inverse RL supports {sorted(FEATURE_NAMES)}")
        if self.demos < 1:
            raise ValueError(f"demos = {self.demos}: inverse RL needs expert demonstrations (>= 1)")
        if self.final_episodes < 1:
            raise ValueError(f"final_episodes = {self.final_episodes}: expected an integer >= 1")
        if self.sac.n_step != 1:
            raise ValueError(f"n_step = {self.sac.n_step}: a relabelled reward needs 1-step transitions (--n-step 1)")
        if self.method == "apprenticeship" and self.iteration_steps < 1:
            raise ValueError(f"total_steps = {self.total_steps}: apprenticeship needs more than learning_starts "
                             f"({self.sac.learning_starts}) + {self.apprenticeship.iterations} steps")
        self.train_config()  # validates the shared fields (steps, seed, threads)

    @property
    def iteration_steps(self) -> int:
        return (self.total_steps - self.sac.learning_starts) // self.apprenticeship.iterations

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / f"irl-{self.method}-{self.task}-seed{self.seed}"

    def train_config(self) -> TrainConfig:
        return TrainConfig(task=self.task, total_steps=self.total_steps, seed=self.seed, demos=self.demos,
                           eval_every=self.eval_every, eval_episodes=self.eval_episodes,
                           checkpoint_every=self.total_steps, run_dir=self.resolved_run_dir(), threads=self.threads,
                           sac=self.sac)


def make_reward_model(config: IRLConfig, rollout_env: LearnedRewardWrapper):
    """The method's reward model, with the expert's statistics it needs computed up front."""
    if config.method == "gail":
        obs_dim, action_dim = rollout_env.observation_space.shape[0], rollout_env.action_space.shape[0]
        return GAILReward(config.gail, obs_dim, action_dim, config.sac.learning_starts, config.seed)
    features, gamma = StateFeatures(rollout_env), config.sac.gamma
    expert = make_expert(rollout_env.unwrapped)
    # The demonstrations' own seeds (as rl.demos.collect_demos draws them), failed episodes dropped as there.
    demo_seeds = [DEMO_SEED + 1000 * config.seed + k for k in range(config.demos)]
    mu_expert = rollout_stats(rollout_env, features, expert, demo_seeds, gamma, keep=bool).feature_expectations
    episodes = config.apprenticeship.rollout_episodes
    start_seeds = [ROLLOUT_SEED - 1000 + k for k in range(episodes)]
    mu_start = rollout_stats(rollout_env, features, lambda obs: rollout_env.action_space.sample(), start_seeds,
                             gamma).feature_expectations  # the random warm-up policy is iterate 0
    return ApprenticeshipReward(config.apprenticeship, features, rollout_env, mu_expert, mu_start, gamma,
                                config.sac.learning_starts, config.iteration_steps, ROLLOUT_SEED)


def run_irl(config: IRLConfig) -> dict:
    """Train, pick the policy, compare it with the expert on the same seeds; returns irl_summary.json's dict."""
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    train_config, run_dir = config.train_config(), config.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "irl_config.json", {**dataclasses.asdict(config), "run_dir": str(run_dir)})
    rollout_env = LearnedRewardWrapper(EnvConfig(task=config.task).make(), lambda *batch: np.zeros(1))
    rollout_env.action_space.seed(config.seed)
    model = make_reward_model(config, rollout_env)
    trainer = Trainer(train_config, reward_model=model)
    trainer.run()
    details = {}
    if isinstance(model, ApprenticeshipReward):
        chosen = model.best()
        trainer.agent.actor.load_state_dict(model.iterates[chosen].actor)
        export_policy(run_dir, trainer.agent, train_config.env_config(), algo="sac+apprenticeship",
                      step=trainer.step)
        details = {"feature_names": list(model.features.names), "mu_expert": model.mu_expert.tolist(),
                   "chosen_iteration": chosen + 1,
                   "iterations": [{"weights": it.weights.tolist(), "margin": it.margin,
                                   "mu": it.stats.feature_expectations.tolist(), "true_return": it.stats.true_return,
                                   "success_rate": it.stats.success_rate} for it in model.iterates]}
    train_seconds = time.perf_counter() - started
    imitation = evaluate(resolve_policy(str(run_dir)), config.final_episodes, seed=EVAL_SEED)
    expert = evaluate(PolicySpec("expert"), config.final_episodes, task=config.task, seed=EVAL_SEED)
    summary = {"method": config.method, "task": config.task, "seed": config.seed, "steps": trainer.step,
               "episodes": config.final_episodes, "imitation_return": imitation["mean_return"],
               "expert_return": expert["mean_return"],
               "return_ratio": imitation["mean_return"] / expert["mean_return"],
               "imitation_success": imitation["success_rate"], "expert_success": expert["success_rate"],
               "train_wall_seconds": train_seconds, "threads": config.threads, **details}
    if config.method == "gail":
        summary["gail_inputs"], summary["gail_reward"] = config.gail.inputs, config.gail.reward
    write_json(run_dir / "irl_summary.json", summary)
    return summary


@dataclass(frozen=True)
class IRLCommand:
    """Inverse RL (`tidyarm irl --method apprenticeship|gail --task reach`); evaluate with `tidyarm eval RUN_DIR`."""

    config: Annotated[IRLConfig, tyro.conf.arg(name="")] = IRLConfig()
