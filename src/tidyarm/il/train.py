"""The imitation training loop: sample chunks -> update -> log -> evaluate in the sim -> checkpoint, resumable.

A run directory holds config.json, metrics.csv, tensorboard/, checkpoint/ (weights, optimizer, EMA, RNG
states) and the deployable policy (policy.safetensors + policy.json), refreshed at every checkpoint so a
killed run still leaves a policy `tidyarm eval RUN_DIR` can load. Evaluation runs the same EnvConfig
factory and seeds as `tidyarm eval`, seeds that recording never uses.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tidyarm import __version__
from tidyarm.eval import EVAL_SEED
from tidyarm.il.agent import ILAgent, il_env_config
from tidyarm.il.chunks import ChunkSampler
from tidyarm.il.config import TrainILConfig
from tidyarm.il.demos import dataset_stats, load_demos
from tidyarm.il.features import ACTION, STATE, InputSpec
from tidyarm.il.policy_file import save_il_policy
from tidyarm.il.registry import make_il_policy
from tidyarm.rl.agent_state import pack_agent_state, unpack_agent_state
from tidyarm.rl.checkpoint import check_meta, find_checkpoint, load_tensors, read_json, save_checkpoint, write_json
from tidyarm.rl.logger import RunLogger
from tidyarm.rollout import run_episodes

EMA_PREFIX = "ema."


class ILTrainer:
    """Owns the demonstrations, policy, optimizer and logs of one run; `run()` trains to `config.total_steps`."""

    def __init__(self, config: TrainILConfig, resume: bool = False):
        self.config, self.run_dir = config, config.resolved_run_dir()
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        started = time.perf_counter()
        self.demos, self.task = load_demos(config.dataset, config.inputs, config.episodes, config.task,
                                           config.image_size, config.randomize, config.demo_noise,
                                           config.demo_misses)
        self.demo_seconds = time.perf_counter() - started
        self.spec = InputSpec.from_features(self.demos.features, config.inputs)
        stats = dataset_stats(self.demos, self.spec)
        shape = make_il_policy(config.policy, config.policy_config, self.spec, stats)  # its horizons, cheaply
        self.sampler = ChunkSampler(self.demos.frames, self.demos.episode_bounds(), self.spec.names,
                                    shape.n_obs_steps, shape.horizon, shape.action_offset, seed=config.seed)
        if config.relative_actions:
            stats = {**stats, ACTION: self.sampler.relative_action_stats(STATE)}
        self.policy = make_il_policy(config.policy, config.policy_config, self.spec, stats, config.relative_actions)
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=config.peak_lr,
                                           weight_decay=config.weight_decay)
        self.env_config = il_env_config(self.task, self.spec, config.randomize)
        self.step, self.train_seconds = 0, 0.0
        if resume:
            self._load_checkpoint()
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "config.json", config.to_dict())

    def learning_rate(self, step: int) -> float:
        """Linear warm-up, then cosine decay to zero at the last step (a function of the step: no state to resume)."""
        warmup = min(1.0, (step + 1) / self.config.warmup_steps) if self.config.warmup_steps else 1.0
        progress = min(1.0, step / self.config.total_steps)
        return self.config.peak_lr * warmup * 0.5 * (1.0 + math.cos(math.pi * progress))

    def update(self) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        loss, metrics = self.policy.loss(self.sampler.sample(self.config.batch_size))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.policy.after_step()
        return {"loss": loss.item(), "grad_norm": float(grad_norm), **metrics}

    def evaluate(self, episodes: int) -> dict[str, float]:
        env = self.env_config.make()
        agent = ILAgent(self.policy.deployable()).bind(env)
        results, _ = run_episodes(env, agent, episodes, seed=EVAL_SEED)
        env.close()
        return {"success_rate": float(np.mean([e.success for e in results])),
                "mean_return": float(np.mean([e.episode_return for e in results]))}

    def run(self) -> Path:
        config, logger = self.config, RunLogger(self.run_dir, start_step=self.step)
        self.policy.train()
        sums: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        with tqdm(total=config.total_steps, initial=self.step, desc=f"train-il {config.policy}",
                  unit="step") as progress:
            while self.step < config.total_steps:
                started = time.perf_counter()
                for key, value in self.update().items():
                    sums[key] = sums.get(key, 0.0) + value
                self.train_seconds += time.perf_counter() - started
                self.step, window_steps = self.step + 1, window_steps + 1
                progress.update()
                if self.step % config.log_every == 0 or self.step == config.total_steps:
                    rate = window_steps / (time.perf_counter() - window_start)
                    averages = {key: value / window_steps for key, value in sums.items()}
                    logger.log(self.step, {**averages, "steps_per_s": rate, "lr": self.learning_rate(self.step - 1),
                                           "seconds": self.train_seconds}, "train")
                    progress.set_postfix(loss=f"{sums['loss'] / window_steps:.4f}")
                    sums, window_start, window_steps = {}, time.perf_counter(), 0
                at_eval = (config.eval_every and self.step % config.eval_every == 0) or self.step == config.total_steps
                if config.eval_episodes and at_eval:
                    metrics = self.evaluate(config.eval_episodes)
                    logger.log(self.step, metrics, "eval")
                    progress.write(f"step {self.step}: success {metrics['success_rate']:.0%} over "
                                   f"{config.eval_episodes} episodes")
                    self.policy.train()
                if self.step % config.checkpoint_every == 0 or self.step == config.total_steps:
                    self.save_checkpoint()
        logger.close()
        return self.run_dir

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        tensors = pack_agent_state({"policy": self.policy}, {"optim": self.optimizer},
                                   {"torch_rng_state": torch.get_rng_state()})
        tensors.update({EMA_PREFIX + key: value.clone() for key, value in getattr(self.policy, "ema", {}).items()})
        meta = {"step": self.step, "policy": self.config.policy, "train_seconds": self.train_seconds,
                "ema_updates": getattr(self.policy, "ema_updates", 0),
                "sampler_rng": self.sampler.rng.bit_generator.state,
                "tidyarm_version": __version__, "torch_version": torch.__version__}
        save_checkpoint(self.run_dir, tensors, {}, meta)
        save_il_policy(self.run_dir, self.policy, self.env_config, self.step, self.config.dataset,
                       command=f"tidyarm train-il --policy {self.config.policy} --dataset {self.config.dataset}")

    def _load_checkpoint(self) -> None:
        directory = find_checkpoint(self.run_dir)
        meta = read_json(directory / "meta.json")
        check_meta(meta, {"policy": self.config.policy}, directory / "meta.json")
        tensors = load_tensors(directory / "agent.safetensors")
        ema = {key[len(EMA_PREFIX):]: tensors.pop(key) for key in list(tensors) if key.startswith(EMA_PREFIX)}
        rng_state = torch.empty_like(torch.get_rng_state())
        try:
            unpack_agent_state(tensors, {"policy": self.policy}, {"optim": self.optimizer},
                               {"torch_rng_state": rng_state})
        except ValueError as error:
            raise ValueError(f"{directory / 'agent.safetensors'}: {error}") from error
        torch.set_rng_state(rng_state)
        if ema:
            self.policy.ema, self.policy.ema_updates = ema, int(meta["ema_updates"])
        self.sampler.rng.bit_generator.state = meta["sampler_rng"]
        self.step, self.train_seconds = int(meta["step"]), float(meta["train_seconds"])


def train_il(config: TrainILConfig) -> Path:
    return ILTrainer(config).run()


def resume_il(run_dir: Path, steps: int | None = None) -> Path:
    """Continue a run from its checkpoint with its own config (optionally to a new number of steps)."""
    values = read_json(Path(run_dir) / "config.json")
    values["run_dir"] = str(run_dir)
    if steps is not None:
        values["steps"] = steps
    return ILTrainer(TrainILConfig.from_dict(values), resume=True).run()
