"""The training loop for every off-policy learner: collect -> update -> evaluate -> checkpoint, resumable.

Learners: `sac` from state, `vsac` (low-resolution visual SAC) and `drqv2` from pixels; each exposes the same
act / update_many / warm-start / state-dict methods, so the loop never touches network internals.
A run directory holds config.json, metrics.csv, tensorboard/, learning_curve.png, checkpoint/ and the
deployable policy (policy.safetensors + policy.json). Training episodes and evaluation episodes are made
by the same EnvConfig factory; evaluation uses seeds that training never sees.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

import numpy as np
import torch
import tyro
from tqdm import tqdm

from tidyarm import __version__
from tidyarm.eval import EVAL_SEED
from tidyarm.plots import plot_learning_curve
from tidyarm.rl.checkpoint import check_meta, find_checkpoint, read_json, restore_agent, save_checkpoint, write_json
from tidyarm.rl.demos import collect_demos
from tidyarm.rl.drqv2 import DrQV2, DrQV2Config
from tidyarm.rl.frame_stack import FrameStack
from tidyarm.rl.logger import RunLogger, read_metrics
from tidyarm.rl.pixel_actor import PixelNetConfig
from tidyarm.rl.policy_io import export_pixel_policy, export_policy
from tidyarm.rl.replay import NStepAccumulator, ReplayBuffer, read_npz, sample_mixed
from tidyarm.rl.sac import SAC, SACConfig
from tidyarm.rl.vsac import VisualSAC, VisualSACConfig
from tidyarm.rollout import run_episodes
from tidyarm.sim.env import EnvConfig
from tidyarm.sim.vector import make_vector_env

ALGO_OBS = {"sac": "state", "vsac": "pixels", "drqv2": "pixels"}  # what each learner observes

# Defaults chosen from the lift runs in docs/sac.md: LayerNorm critics, UTD 2 (what a 2-core CPU affords),
# 3-step returns, and the scripted demonstrations used three ways: half of every batch, a BC warm start
# with a critic warm-up, and a TD3+BC-style anchor. Scripted demos cost seconds of sim, so the default
# takes 100 of them (lift, one seed each, 20-episode evals: 85% at 25k steps from 100 demos, 40% from 20).
# Batch 128 rather than 256: on 100 unseen seeds after 50k steps, seeds 0/1/2 scored 88/96/90% against
# 89/86/91% with 256, in 70% of the wall time.
DEFAULT_SAC = SACConfig(gamma=0.97, batch_size=128, num_critics=2, num_min_critics=2, critic_layer_norm=True,
                        utd_ratio=2, n_step=3, learning_starts=1000, init_temperature=0.1, bc_warmup_steps=5000,
                        critic_warmup_steps=2000, bc_weight=0.4)


@dataclass(frozen=True)
class TrainConfig:
    """Train a policy from state in the SO-101 simulator."""

    task: str = "lift"
    """Task: reach, lift or place."""
    algo: str = "sac"
    """Algorithm: sac (from state), vsac (low-resolution visual SAC) or drqv2 (both from pixels)."""
    obs: str = "state"
    """Observations: state (for sac) or pixels (for vsac and drqv2: cameras + proprioception)."""
    action_mode: str = "ee"
    """Action mode: ee, joint or joint_delta."""
    randomize: bool = True
    """Domain randomization with the default ranges."""
    total_steps: int = 50_000
    """Env steps to train for (1 .. 10,000,000)."""
    seed: int = 0
    """Seed of the env, the networks and replay sampling (>= 0)."""
    demos: int = 100
    """Scripted-expert episodes in the offline buffer, sampled 50/50 with online data (0 = none)."""
    eval_every: int = 5_000
    """Evaluate the deterministic policy every this many env steps."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation (the final `tidyarm eval` uses 100)."""
    stop_success: float = 1.01
    """Stop once a periodic evaluation reaches this success rate (above 1 never stops early)."""
    checkpoint_every: int = 10_000
    """Write a checkpoint (weights, optimizers, replay) every this many env steps."""
    log_every: int = 1_000
    """Log training metrics every this many env steps."""
    run_dir: Path | None = None
    """Run directory (default runs/<task>-<algo>-seed<seed>)."""
    threads: int = 2
    """torch CPU threads."""
    num_envs: int = 1
    """Envs collecting side by side, each in its own worker process (1: one env in this process). Every env
    step still gets its utd_ratio updates, so more envs speed up collection, not learning per step."""
    device: str = "cpu"
    """torch device (cpu or cuda)."""
    sac: tyro.conf.OmitArgPrefixes[SACConfig] = DEFAULT_SAC
    """SAC / RLPD hyperparameters (algo sac; flags without a prefix, e.g. --batch-size)."""
    vsac: VisualSACConfig = VisualSACConfig()
    """Visual SAC hyperparameters (algo vsac)."""
    drqv2: DrQV2Config = DrQV2Config()
    """DrQ-v2 hyperparameters (algo drqv2)."""
    pixels: PixelNetConfig = PixelNetConfig()
    """Cameras, image size, frame stack and encoder of the pixel learners."""

    def __post_init__(self) -> None:
        EnvConfig(task=self.task, action_mode=self.action_mode)  # validates the names
        if self.algo not in ALGO_OBS:
            raise ValueError(f"algo {self.algo!r}: expected one of {list(ALGO_OBS)}")
        if self.obs != ALGO_OBS[self.algo]:
            raise ValueError(f"obs {self.obs!r}: algo {self.algo!r} learns from {ALGO_OBS[self.algo]!r} "
                             f"(pass --obs {ALGO_OBS[self.algo]})")
        for name, low, high in (("total_steps", 1, 10_000_000), ("eval_every", 1, 10_000_000),
                                ("eval_episodes", 1, 10_000), ("checkpoint_every", 1, 10_000_000),
                                ("log_every", 1, 10_000_000), ("demos", 0, 10_000), ("seed", 0, 2**31 - 1),
                                ("threads", 1, 256), ("num_envs", 1, 64)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} = {value}: expected an integer in {low} .. {high}")

    @property
    def rl(self) -> SACConfig | VisualSACConfig | DrQV2Config:
        """The chosen learner's hyperparameters (the loop reads batch_size, n_step, learning_starts, ...)."""
        return {"sac": self.sac, "vsac": self.vsac, "drqv2": self.drqv2}[self.algo]

    def env_config(self) -> EnvConfig:
        """The training env. An asymmetric visual SAC also gets the state vector for its critic."""
        if self.obs == "state":
            return EnvConfig(task=self.task, obs_mode="state", action_mode=self.action_mode, randomize=self.randomize)
        obs_mode = "state+pixels" if self.algo == "vsac" and self.vsac.asymmetric_critic else "pixels"
        return EnvConfig(task=self.task, obs_mode=obs_mode, action_mode=self.action_mode, randomize=self.randomize,
                         image_size=self.pixels.image_size, supersample=self.pixels.supersample,
                         cameras=self.pixels.cameras)

    def make_env(self):
        """The training env, its camera frames stacked when the pixel learner asks for it."""
        env = self.env_config().make()
        if self.obs == "pixels" and self.pixels.frame_stack > 1:
            env = FrameStack(env, self.pixels.cameras, self.pixels.frame_stack)
        return env

    def make_collection_env(self):
        """The envs that collect training data, as one Gymnasium vector env (same-step autoreset): num_envs
        worker processes, or a single env stepped in this process."""
        frame_stack = self.pixels.frame_stack if self.obs == "pixels" else 1
        return make_vector_env(self.env_config(), self.num_envs, asynchronous=self.num_envs > 1,
                               frame_stack=frame_stack)

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / f"{self.task}-{self.algo}-seed{self.seed}"

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)  # tuples become lists in JSON; from_dict turns them back
        values["run_dir"] = str(self.resolved_run_dir())
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        nested = {"sac": SACConfig, "vsac": VisualSACConfig, "drqv2": DrQV2Config, "pixels": PixelNetConfig}
        configs = {name: _with_tuples(kind, values[name]) for name, kind in nested.items() if name in values}
        return cls(**{**values, **configs, "run_dir": Path(values["run_dir"])})


def _with_tuples(kind, values: dict):
    """A config dataclass from its JSON dict (lists back to tuples)."""
    return kind(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def make_agent(config: TrainConfig, space, action_dim: int) -> SAC | VisualSAC | DrQV2:
    if config.algo == "sac":
        return SAC(space.shape[0], action_dim, config.sac, device=config.device)
    if config.algo == "vsac":
        state_dim = space["state"].shape[0] if "state" in space.spaces else None
        return VisualSAC(config.pixels, action_dim, config.vsac, state_dim=state_dim, device=config.device)
    return DrQV2(config.pixels, action_dim, config.drqv2, device=config.device)


class RewardModel(Protocol):
    """A reward learned beside the policy (inverse RL) that replaces the env reward in every sampled batch.

    Relabelling at sampling time keeps online and demonstration transitions on the current reward however
    often it changes; it needs 1-step transitions, since an n-step return cannot be re-summed from its ends.
    """

    def __call__(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Rewards (B,) of a batch of transitions."""

    finished: bool
    """True once the model has converged; the loop then stops early."""

    def update(self, trainer: Trainer) -> dict[str, float]:
        """Called after every collected env step (before the agent's updates); returns metrics to log."""


class Trainer:
    """Owns env, agent, buffers and logs for one run; `run()` trains to `total_steps`.

    `reward_model` (state SAC only, n_step 1, no resume) replaces the env reward by a learned one.
    """

    def __init__(self, config: TrainConfig, resume: bool = False, reward_model: RewardModel | None = None):
        if reward_model is not None and (config.algo != "sac" or config.rl.n_step != 1 or resume
                                         or config.num_envs != 1):
            raise ValueError(f"a reward model needs algo 'sac' (got {config.algo!r}), n_step 1 (got "
                             f"{config.rl.n_step}), one env (got {config.num_envs}) and a fresh run (resume={resume})")
        self.reward_model = reward_model
        self.config, self.run_dir = config, config.resolved_run_dir()
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.env, self.eval_env = config.make_collection_env(), config.make_env()
        self.obs_space, action_dim = self.env.single_observation_space, self.env.single_action_space.shape[0]
        self.agent = make_agent(config, self.obs_space, action_dim)
        # The last collection round may run past total_steps by up to num_envs - 1 steps.
        self.online = ReplayBuffer(self.obs_space, action_dim, capacity=config.total_steps + config.num_envs - 1)
        self.offline = None
        self.step = self.saved_step = 0
        if resume:
            self._restore()
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "config.json", config.to_dict())
            self.offline = collect_demos(config.env_config(), config.demos, config.seed, config.rl,
                                         make_env=config.make_env) if config.demos else None
        self.logger = RunLogger(self.run_dir, self.step)
        self.successes: deque[bool] = deque(maxlen=20)  # recent training episodes, for the progress bar
        self.eval_success = float("nan")

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self) -> Path:
        config = self.config
        rl = config.rl
        envs = config.num_envs
        self.accumulators = [NStepAccumulator(rl.n_step, rl.gamma) for _ in range(envs)]
        # env i starts from seed + step + i; a resumed run starts fresh episodes.
        self.obs, _ = self.env.reset(seed=config.seed + self.step)
        self.env.action_space.seed(config.seed + self.step)  # random warm-up actions are repeatable too
        self.episode_returns, self.episode_successes = np.zeros(envs), np.zeros(envs, dtype=bool)
        self.update_metrics, self.reward_metrics = {}, {}
        self.seconds = {"env": 0.0, "update": 0.0}
        self.started, self.bar = time.perf_counter(), tqdm(
            total=config.total_steps, initial=self.step, unit="step", dynamic_ncols=True, mininterval=2.0,
            desc=f"{config.task}/{config.algo}")
        stop = False
        while self.step < config.total_steps and not stop:
            tick = time.perf_counter()
            self._collect()
            self.seconds["env"] += time.perf_counter() - tick
            for _ in range(min(envs, config.total_steps - self.step)):
                stop = self._after_env_step()
                if stop:
                    break
        self.bar.close()
        self.env.close()
        if self.saved_step != self.step:
            self._checkpoint()
        self.logger.close()
        plot_learning_curve(self.run_dir, f"{config.task} / {config.algo} / seed {config.seed}")
        self._write_summary()
        return self.run_dir

    def _write_summary(self) -> None:
        """summary.json: steps, wall time split, and the first evaluation at or above 90% success."""
        evaluations = read_metrics(self.run_dir / "metrics.csv").get("eval/success_rate", [])
        wall = time.perf_counter() - self.started
        write_json(self.run_dir / "summary.json", {
            "steps": self.step, "wall_seconds_this_session": wall,
            "env_share": self.seconds["env"] / wall, "update_share": self.seconds["update"] / wall,
            "steps_to_90": next((step for step, success in evaluations if success >= 0.9), None),
            "final_eval_success": evaluations[-1][1] if evaluations else None})

    def _collect(self) -> None:
        """Step every collection env once (num_envs env steps) and store what it saw.

        A finished env has already reset (same-step autoreset): its transition ends at info["final_obs"][i],
        and its success is in info["final_info"], while obs[i] and the top-level info describe the new episode.
        """
        actions = self._explore(self.obs)
        next_obs, rewards, terminated, truncated, info = self.env.step(actions)
        for i in range(self.config.num_envs):
            done = bool(terminated[i] or truncated[i])
            last_obs = info["final_obs"][i] if done else _env_slice(next_obs, i)
            for transition in self.accumulators[i].push(_env_slice(self.obs, i), actions[i], rewards[i], last_obs,
                                                        terminated[i], truncated[i]):
                self.online.add(*transition)
            self.episode_returns[i] += rewards[i]
            self.episode_successes[i] |= bool(info["final_info"]["success"][i] if done else info["success"][i])
            if done:
                self.successes.append(bool(self.episode_successes[i]))
                self.logger.log(self.step + i + 1, {"episode_return": self.episode_returns[i],
                                                    "success_rate": float(np.mean(self.successes))}, "train")
                self.episode_returns[i], self.episode_successes[i] = 0.0, False
        self.obs = next_obs

    def _after_env_step(self) -> bool:
        """Count one collected env step and do what is due at it: reward-model and agent updates, then logs,
        evaluation and checkpoints. Returns True when training should stop early."""
        rl, tick = self.config.rl, time.perf_counter()
        self.step += 1
        self.bar.update(1)
        if self.reward_model is not None:
            self.reward_metrics.update(self.reward_model.update(self))
        if self.step == max(rl.learning_starts, 1):
            self._warm_start()
        if self.step >= rl.learning_starts and self.step % rl.update_every == 0:
            self.update_metrics = self.agent.update_many(self._sample, rl.utd_ratio)
        self.seconds["update"] += time.perf_counter() - tick
        return self._periodic() or bool(self.reward_model is not None and self.reward_model.finished)

    def _periodic(self) -> bool:
        """Logging, evaluation and checkpoints on their schedules; True when training should stop early."""
        config, last = self.config, self.step == self.config.total_steps
        stop = False
        if self.step % config.log_every == 0:
            self._log_progress()
        if self.step % config.eval_every == 0 or last:
            stop = self._evaluate() >= config.stop_success
        if self.step % config.checkpoint_every == 0 or last or stop:
            self._checkpoint()
        return stop

    def _warm_start(self) -> None:
        """Once, when learning starts: fit the observation standardization, then (with demos) clone the expert
        into the actor and fit the critic to that policy before regular SAC updates begin."""
        rl = self.config.rl
        self._fit_obs_normalizer()
        if self.offline and rl.bc_warmup_steps:
            loss = self.agent.behavior_clone(self.offline.observations(), self.offline.actions(), rl.bc_warmup_steps,
                                             rl.batch_size, self.rng)
            self.logger.log(self.step, {"bc_loss": loss}, "warmup")
        if rl.critic_warmup_steps:
            self.agent.update_critic_only(self._sample, rl.critic_warmup_steps)

    def _fit_obs_normalizer(self) -> None:
        """Standardization statistics from everything stored so far (random-action steps and demos)."""
        stored = [buffer.observations() for buffer in (self.online, self.offline) if buffer]
        if self.config.obs == "state":
            self.agent.fit_obs_normalizer(np.concatenate(stored))
            return
        state = np.concatenate([obs["state"] for obs in stored]) if "state" in stored[0] else None
        self.agent.fit_obs_normalizer(np.concatenate([obs["proprio"] for obs in stored]), state)

    def _explore(self, obs) -> np.ndarray:
        """Actions (num_envs, action_dim): uniform random until learning starts, then samples of the policy."""
        if self.step < self.config.rl.learning_starts:
            return self.env.action_space.sample()
        return np.stack([self.agent.act(_env_slice(obs, i), eval_mode=False) for i in range(self.config.num_envs)])

    def _sample(self) -> dict:
        batch = sample_mixed(self.online, self.offline, self.config.rl.batch_size, self.rng,
                             self.config.rl.offline_fraction)
        if self.reward_model is not None:
            batch["reward"] = self.reward_model(batch["obs"], batch["action"], batch["next_obs"])
        return batch

    def _log_progress(self) -> None:
        recent = float(np.mean(self.successes)) if self.successes else 0.0
        rate = self.bar.format_dict["rate"] or 0.0
        self.logger.log(self.step, {**self.update_metrics, **self.reward_metrics, "steps_per_second": rate}, "train")
        self.bar.set_postfix(success=f"{recent:.2f}", eval=f"{self.eval_success:.2f}", refresh=False)

    def _evaluate(self) -> float:
        episodes, _ = run_episodes(self.eval_env, lambda obs: self.agent.act(obs, eval_mode=True),
                                   self.config.eval_episodes, seed=EVAL_SEED)
        self.eval_success = float(np.mean([e.success for e in episodes]))
        self.logger.log(self.step, {"success_rate": self.eval_success,
                                    "return": float(np.mean([e.episode_return for e in episodes])),
                                    "length": float(np.mean([e.length for e in episodes]))}, "eval")
        return self.eval_success

    # -- persistence ---------------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"step": self.step, "task": self.config.task, "algo": self.config.algo, **self._obs_signature(),
                "action_dim": self.agent.action_dim, "tidyarm_version": __version__,
                "torch_version": torch.__version__, "rng_state": self.rng.bit_generator.state}

    def _obs_signature(self) -> dict:
        """What the checkpoint's networks were built for: obs_dim (state) or every observation array's shape."""
        space = self.obs_space
        if self.config.obs == "state":
            return {"obs_dim": space.shape[0]}
        return {"obs_shapes": {key: list(sub.shape) for key, sub in space.spaces.items()}}

    def _checkpoint(self) -> None:
        tensors = {**self.agent.state_dict(), "torch_rng_state": torch.get_rng_state()}
        buffers = {"online": self.online, **({"offline": self.offline} if self.offline else {})}
        save_checkpoint(self.run_dir, tensors, buffers, self._meta())
        if self.config.obs == "state":
            export_policy(self.run_dir, self.agent, self.config.env_config(), algo=self.config.algo, step=self.step)
        else:  # deployed on what a real arm provides: cameras and proprioception, frames stacked by the policy
            deployed = dataclasses.replace(self.config.env_config(), obs_mode="pixels")
            export_pixel_policy(self.run_dir, self.agent.actor, deployed, algo=self.config.algo, step=self.step)
        self.saved_step = self.step

    def _restore(self) -> None:
        path = find_checkpoint(self.run_dir)
        meta = read_json(path / "meta.json")
        expected = {key: value for key, value in self._meta().items() if key in ("task", "algo", "obs_dim",
                                                                                   "obs_shapes", "action_dim")}
        check_meta(meta, expected, path / "meta.json")
        restore_agent(path, self.agent)
        self.online.load(path / "online.npz")
        if (path / "offline.npz").is_file():
            capacity = int(read_npz(path / "offline.npz")["capacity"])
            self.offline = ReplayBuffer(self.obs_space, self.agent.action_dim, capacity)
            self.offline.load(path / "offline.npz")
        self.rng.bit_generator.state = meta["rng_state"]
        self.step = self.saved_step = int(meta["step"])


def _env_slice(batch, i: int):
    """Env i's entry of a vector env's batched observation (an array, or a dict of arrays)."""
    return {key: value[i] for key, value in batch.items()} if isinstance(batch, dict) else batch[i]


@dataclass(frozen=True)
class TrainCommand:
    """Train a policy in simulation (`tidyarm train --task lift --algo sac`), or resume a run."""

    config: Annotated[TrainConfig, tyro.conf.arg(name="")] = TrainConfig()
    resume: Path | None = None
    """Continue this run directory from its last checkpoint (its config.json wins; --total-steps may extend)."""


def train(config: TrainConfig) -> Path:
    return Trainer(config).run()


def resume(run_dir: Path, total_steps: int | None = None) -> Path:
    """Continue a run from its last checkpoint (optionally to a new step budget)."""
    config = TrainConfig.from_dict(read_json(run_dir / "config.json"))
    config = dataclasses.replace(config, run_dir=run_dir, **({"total_steps": total_steps} if total_steps else {}))
    return Trainer(config, resume=True).run()


