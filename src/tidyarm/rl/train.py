"""The state-based training loop: collect -> update -> evaluate -> checkpoint, resumable.

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

import numpy as np
import torch
import tyro
from tqdm import tqdm

from tidyarm import __version__
from tidyarm.eval import EVAL_SEED
from tidyarm.plots import plot_learning_curve
from tidyarm.rl.checkpoint import check_meta, find_checkpoint, load_tensors, read_json, save_checkpoint, write_json
from tidyarm.rl.demos import collect_demos
from tidyarm.rl.logger import RunLogger, read_metrics
from tidyarm.rl.policy_io import export_policy
from tidyarm.rl.replay import NStepAccumulator, ReplayBuffer, read_npz, sample_mixed
from tidyarm.rl.sac import SAC, SACConfig
from tidyarm.rollout import run_episodes
from tidyarm.sim.env import EnvConfig

# Defaults chosen from the lift runs in docs/sac.md: LayerNorm critics, UTD 2 (what a 2-core CPU affords),
# 3-step returns, and the scripted demonstrations used three ways: half of every batch, a BC warm start
# with a critic warm-up, and a TD3+BC-style anchor. Scripted demos cost seconds of sim, so the default
# takes 100 of them (lift, one seed each, 20-episode evals: 85% at 25k steps from 100 demos, 40% from 20).
DEFAULT_SAC = SACConfig(gamma=0.97, num_critics=2, num_min_critics=2, critic_layer_norm=True, utd_ratio=2,
                        n_step=3, learning_starts=1000, init_temperature=0.1, bc_warmup_steps=5000,
                        critic_warmup_steps=2000, bc_weight=0.4)


@dataclass(frozen=True)
class TrainConfig:
    """Train a policy from state in the SO-101 simulator."""

    task: str = "lift"
    """Task: reach, lift or place."""
    algo: str = "sac"
    """Algorithm (state-based): sac."""
    action_mode: str = "ee"
    """Action mode: ee, joint or joint_delta."""
    randomize: bool = True
    """Domain randomization with the default ranges."""
    total_steps: int = 100_000
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
    device: str = "cpu"
    """torch device (cpu or cuda)."""
    sac: SACConfig = DEFAULT_SAC
    """SAC / RLPD hyperparameters."""

    def __post_init__(self) -> None:
        EnvConfig(task=self.task, action_mode=self.action_mode)  # validates the names
        if self.algo != "sac":
            raise ValueError(f"algo {self.algo!r}: state training supports 'sac'")
        for name, low, high in (("total_steps", 1, 10_000_000), ("eval_every", 1, 10_000_000),
                                ("eval_episodes", 1, 10_000), ("checkpoint_every", 1, 10_000_000),
                                ("log_every", 1, 10_000_000), ("demos", 0, 10_000), ("seed", 0, 2**31 - 1),
                                ("threads", 1, 256)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} = {value}: expected an integer in {low} .. {high}")

    def env_config(self) -> EnvConfig:
        return EnvConfig(task=self.task, obs_mode="state", action_mode=self.action_mode, randomize=self.randomize)

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / f"{self.task}-{self.algo}-seed{self.seed}"

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["run_dir"] = str(self.resolved_run_dir())
        values["sac"]["hidden_dims"] = list(self.sac.hidden_dims)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        sac = SACConfig(**{**values["sac"], "hidden_dims": tuple(values["sac"]["hidden_dims"])})
        return cls(**{**values, "sac": sac, "run_dir": Path(values["run_dir"])})


class Trainer:
    """Owns env, agent, buffers and logs for one run; `run()` trains to `total_steps`."""

    def __init__(self, config: TrainConfig, resume: bool = False):
        self.config, self.run_dir = config, config.resolved_run_dir()
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        env_config = config.env_config()
        self.env, self.eval_env = env_config.make(), env_config.make()
        obs_dim, action_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        self.agent = SAC(obs_dim, action_dim, config.sac, device=config.device)
        self.online = ReplayBuffer(self.env.observation_space, action_dim, capacity=config.total_steps)
        self.offline = None
        self.step = self.saved_step = 0
        if resume:
            self._restore()
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "config.json", config.to_dict())
            self.offline = collect_demos(env_config, config.demos, config.seed, config.sac) if config.demos else None
        self.logger = RunLogger(self.run_dir, self.step)
        self.successes: deque[bool] = deque(maxlen=20)  # recent training episodes, for the progress bar
        self.eval_success = float("nan")

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self) -> Path:
        config = self.config
        self.accumulator = NStepAccumulator(config.sac.n_step, config.sac.gamma)
        self.obs, _ = self.env.reset(seed=config.seed + self.step)  # a resumed run starts a fresh episode
        self.env.action_space.seed(config.seed + self.step)  # random warm-up actions are repeatable too
        self.episode_return, self.episode_success, self.update_metrics = 0.0, False, {}
        self.seconds = {"env": 0.0, "update": 0.0}
        self.started, self.bar = time.perf_counter(), tqdm(
            total=config.total_steps, initial=self.step, unit="step", dynamic_ncols=True, mininterval=2.0,
            desc=f"{config.task}/{config.algo}")
        stop = False
        while self.step < config.total_steps and not stop:
            tick = time.perf_counter()
            self._collect_step()
            tock = time.perf_counter()
            if self.step == max(config.sac.learning_starts, 1):
                self._warm_start()
            if self.step >= config.sac.learning_starts:
                self.update_metrics = self.agent.update_many(self._sample, config.sac.utd_ratio)
            self.seconds["env"] += tock - tick
            self.seconds["update"] += time.perf_counter() - tock
            stop = self._periodic()
        self.bar.close()
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

    def _collect_step(self) -> None:
        action = self._explore(self.obs)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        for transition in self.accumulator.push(self.obs, action, reward, next_obs, terminated, truncated):
            self.online.add(*transition)
        self.episode_return += reward
        self.episode_success |= info["success"]
        self.obs = next_obs
        self.step += 1
        self.bar.update(1)
        if terminated or truncated:
            self.successes.append(self.episode_success)
            self.logger.log(self.step, {"episode_return": self.episode_return,
                                        "success_rate": float(np.mean(self.successes))}, "train")
            self.obs, _ = self.env.reset()
            self.episode_return, self.episode_success = 0.0, False

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
        sac = self.config.sac
        buffers = [self.online] + ([self.offline] if self.offline else [])
        self.agent.fit_obs_normalizer(np.concatenate([buffer.state_dict()["obs"] for buffer in buffers]))
        if self.offline and sac.bc_warmup_steps:
            demos = self.offline.state_dict()
            loss = self.agent.behavior_clone(demos["obs"], demos["action"], sac.bc_warmup_steps, sac.batch_size,
                                             self.rng)
            self.logger.log(self.step, {"bc_loss": loss}, "warmup")
        if sac.critic_warmup_steps:
            self.agent.update_critic_only(self._sample, sac.critic_warmup_steps)

    def _explore(self, obs: np.ndarray) -> np.ndarray:
        if self.step < self.config.sac.learning_starts:
            return self.env.action_space.sample()
        return self.agent.act(obs, eval_mode=False)

    def _sample(self) -> dict:
        return sample_mixed(self.online, self.offline, self.config.sac.batch_size, self.rng,
                            self.config.sac.offline_fraction)

    def _log_progress(self) -> None:
        recent = float(np.mean(self.successes)) if self.successes else 0.0
        self.logger.log(self.step, {**self.update_metrics, "steps_per_second": self.bar.format_dict["rate"] or 0.0},
                        "train")
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
        return {"step": self.step, "task": self.config.task, "algo": self.config.algo,
                "obs_dim": self.agent.obs_dim, "action_dim": self.agent.action_dim, "tidyarm_version": __version__,
                "torch_version": torch.__version__, "rng_state": self.rng.bit_generator.state}

    def _checkpoint(self) -> None:
        tensors = {**self.agent.state_dict(), "torch_rng_state": torch.get_rng_state()}
        buffers = {"online": self.online, **({"offline": self.offline} if self.offline else {})}
        save_checkpoint(self.run_dir, tensors, buffers, self._meta())
        export_policy(self.run_dir, self.agent, self.config.env_config(), algo=self.config.algo, step=self.step)
        self.saved_step = self.step

    def _restore(self) -> None:
        path = find_checkpoint(self.run_dir)
        meta = read_json(path / "meta.json")
        expected = {key: value for key, value in self._meta().items() if key in ("task", "algo", "obs_dim",
                                                                                   "action_dim")}
        check_meta(meta, expected, path / "meta.json")
        tensors = load_tensors(path / "agent.safetensors")
        torch.set_rng_state(tensors.pop("torch_rng_state"))
        try:
            self.agent.load_state_dict(tensors)
        except ValueError as error:
            raise ValueError(f"{path / 'agent.safetensors'}: {error}") from error
        self.online.load(path / "online.npz")
        if (path / "offline.npz").is_file():
            capacity = int(read_npz(path / "offline.npz")["capacity"])
            self.offline = ReplayBuffer(self.env.observation_space, self.agent.action_dim, capacity)
            self.offline.load(path / "offline.npz")
        self.rng.bit_generator.state = meta["rng_state"]
        self.step = self.saved_step = int(meta["step"])


@dataclass(frozen=True)
class TrainCommand:
    """Train a policy in simulation (`tidyarm train --task lift --algo sac`), or resume a run."""

    config: tyro.conf.OmitArgPrefixes[TrainConfig] = TrainConfig()
    resume: Path | None = None
    """Continue this run directory from its last checkpoint (its config.json wins; --total-steps may extend)."""


def train(config: TrainConfig) -> Path:
    return Trainer(config).run()


def resume(run_dir: Path, total_steps: int | None = None) -> Path:
    """Continue a run from its last checkpoint (optionally to a new step budget)."""
    config = TrainConfig.from_dict(read_json(run_dir / "config.json"))
    config = dataclasses.replace(config, run_dir=run_dir, **({"total_steps": total_steps} if total_steps else {}))
    return Trainer(config, resume=True).run()


