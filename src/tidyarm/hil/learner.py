"""The HIL-SERL learner: visual SAC on what the actor sends, two buffers sampled 50/50, resumable.

- online buffer: every policy step (training and evaluation episodes, intervened steps included);
- offline buffer: the intervener's demonstrations and every intervention segment (HIL-SERL's "demo" buffer).

Each batch takes half its rows from each (`sample_mixed`), and the offline rows also anchor the actor
(VisualSAC's bc_weight). Updates are paced to the data (at most `utd_ratio` per robot step received), and the
actor is told how far ahead it may run (`allowed_steps`), so a robot faster than real time cannot outrun
learning. If the actor dies, nothing here is lost: the learner keeps its state, keeps listening, and tells the
restarted actor which episode comes next. A checkpoint holds weights, optimizers, both buffers and counters.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import torch

from tidyarm import __version__
from tidyarm.hil.config import HILConfig
from tidyarm.hil.transport import LearnerServer
from tidyarm.rl.checkpoint import find_checkpoint, read_json, restore_agent, save_checkpoint, write_json
from tidyarm.rl.logger import RunLogger
from tidyarm.rl.policy_io import export_pixel_policy
from tidyarm.rl.replay import NStepAccumulator, ReplayBuffer, sample_mixed
from tidyarm.rl.vsac import VisualSAC
from tidyarm.robot.robot_env import pixel_observation_space

WINDOW = 20  # training episodes in the rolling success and intervention rates
STATUS_EVERY = 1.0  # s between status messages (the actor's link watchdog hears them)


def intervention_share(episodes: Collection[dict]) -> float:
    """The share of the episodes' steps an intervener drove (long intervened episodes weigh more than short
    clean ones, as they do in a person's time)."""
    steps = np.array([e["steps"] for e in episodes], dtype=float)
    return float(np.sum(steps * [e["intervention_rate"] for e in episodes]) / max(steps.sum(), 1.0))


class Learner:
    def __init__(self, config: HILConfig, resume: bool = False):
        from tidyarm.robot.deploy import load_pixel_policy

        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.config, self.run_dir, self.rng = config, Path(config.run_dir), np.random.default_rng(config.seed)
        loaded = load_pixel_policy(config.init)
        net, self.env_config = loaded.policy.net, loaded.env_config
        if net.frame_stack != 1:
            raise ValueError(f"{config.init}: frame_stack = {net.frame_stack}; HIL fine-tuning takes policies on "
                             "single frames (frame_stack 1)")
        action_dim = int(loaded.meta["action_dim"])
        self.agent = VisualSAC(net, action_dim, config.sac, device=config.device)
        space = pixel_observation_space(self.env_config)  # what the actor's RobotEnv observes
        self.online = ReplayBuffer(space, action_dim, capacity=config.total_steps + 1_000)
        self.offline = ReplayBuffer(space, action_dim, capacity=config.total_steps + 1_000)
        self.env_steps = self.episodes = self.updates = 0  # updates: RL updates after the warm-up
        self.warmup_updates = 0  # critic-only updates done so far
        if resume:
            self._restore()
        else:
            self.agent.actor.load_state_dict(loaded.policy.actor.state_dict())
            if self.agent.critic_encoder is not None:  # critic_encoder='own' starts from the policy's
                self.agent.copy_actor_encoder_to_critic()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "hil_config.json", config.to_dict())
        self.agent.set_anchor(loaded.policy.actor)  # the sim policy, which anchor_weight keeps the actor near
        self._last_checkpoint_step = self.env_steps
        self.logger = RunLogger(self.run_dir, self.env_steps)
        self.recent: deque[dict] = deque(maxlen=WINDOW)
        self.eval_block: list[dict] = []
        self.weights_version, self.metrics, self.finished = 0, {}, False
        self.server = LearnerServer(config.bind, config.authkey)
        self._last_status = 0.0  # time.monotonic() of the last message to the actor
        self.started = time.perf_counter()
        self.update_seconds = 0.0

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self, on_idle: Callable[[], None] | None = None) -> dict:
        """Serve the actor and learn until `total_steps` robot steps (or the stop-success evaluation)."""
        connections = self.server.connections
        try:
            while not self.finished:
                self._serve(fresh=self.server.connections != connections)
                connections = self.server.connections
                if not self._learn():
                    time.sleep(0.005)
                if on_idle is not None:
                    on_idle()
            self._send_status(done=True)
            return self._finish()
        finally:
            self.server.close()
            self.logger.close()

    def _serve(self, fresh: bool) -> None:
        for message in self.server.receive():
            if message.get("type") == "episode":
                self._add_episode(message)
        if fresh:  # a (re)connected actor: weights first, then it knows where to continue
            self._send_weights()
        elif time.monotonic() - self._last_status > STATUS_EVERY:
            self._send_status()

    def status(self, done: bool = False) -> dict:
        ahead = max(self.config.sac.learning_starts, self.updates // self.config.sac.utd_ratio)
        if not self._can_learn():  # e.g. only demonstrations so far: nothing to wait for
            ahead = max(ahead, self.env_steps)
        return {"episodes": self.episodes, "env_steps": self.env_steps, "done": done or self.finished,
                "allowed_steps": ahead + self.config.max_ahead, "weights_version": self.weights_version}

    def _send_status(self, done: bool = False) -> None:
        self.server.send({"type": "status", "status": self.status(done)})
        self._last_status = time.monotonic()

    def _send_weights(self) -> None:
        self.weights_version += 1
        weights = {key: value.detach().cpu().numpy() for key, value in self.agent.actor.state_dict().items()}
        self.server.send({"type": "weights", "weights": weights, "status": self.status()})
        self._last_status = time.monotonic()

    def _learn(self) -> bool:
        """One update when the data allows it; False when there was nothing to do."""
        sac = self.config.sac
        if not self._can_learn() or self.updates >= sac.utd_ratio * self.env_steps:
            return False
        start = time.perf_counter()
        if self.warmup_updates < sac.critic_warmup_steps:  # fit the fresh critic before the actor moves
            self.agent.update_critic_only(self._sample, 1)
            self.warmup_updates += 1
        else:
            self.metrics = self.agent.update_many(self._sample, 1)
            self.updates += 1
            if self.updates % self.config.weights_every == 0:
                self._send_weights()
        self.update_seconds += time.perf_counter() - start
        return True

    def _can_learn(self) -> bool:
        """Enough robot steps received (demonstrations count), and some policy data to sample."""
        return self.env_steps >= self.config.sac.learning_starts and len(self.online) > 0

    def _sample(self) -> dict:
        return sample_mixed(self.online, self.offline, self.config.sac.batch_size, self.rng,
                            self.config.sac.offline_fraction)

    # -- data -------------------------------------------------------------------------------------------------
    def _add_episode(self, message: dict) -> None:
        if message["index"] != self.episodes:
            return  # a stale episode from an actor that was replaced
        self.store_episode(message)
        self.episodes += 1
        self.env_steps += int(message["stats"]["steps"])  # robot time, including steps after an eval's success
        self._log_episode(message["mode"], message["stats"])
        if self.env_steps - self._last_checkpoint_step >= self.config.checkpoint_every:
            self.checkpoint()
        if self.env_steps >= self.config.total_steps:
            self.finished = True

    def store_episode(self, message: dict) -> None:
        """n-step transitions of every step into online (unless a demo), and of every intervened run of steps
        into offline, each run cut where control went back to the policy."""
        sac, obs, actions = self.config.sac, message["obs"], message["actions"]
        online, offline = NStepAccumulator(sac.n_step, sac.gamma), NStepAccumulator(sac.n_step, sac.gamma)
        intervened = message["intervened"] | (message["mode"] == "demo")
        last = len(actions) - 1
        for t in range(len(actions)):
            before, after = {k: v[t] for k, v in obs.items()}, {k: v[t + 1] for k, v in obs.items()}
            terminated = message["terminated"] and t == last
            step = (before, actions[t], float(message["rewards"][t]), after, terminated)
            if message["mode"] != "demo":
                for transition in online.push(*step, t == last):
                    self.online.add(*transition)
            if intervened[t]:
                segment_ends = t == last or not intervened[t + 1]
                for transition in offline.push(*step, segment_ends):
                    self.offline.add(*transition)

    def _log_episode(self, mode: str, stats: dict) -> None:
        step = self.env_steps
        self.logger.log(step, {key: float(value) for key, value in stats.items()}, f"episode_{mode}")
        if mode == "train":
            self.recent.append(stats)
            self.logger.log(step, {
                "success_rate": np.mean([s["success"] for s in self.recent]),
                "oracle_success_rate": np.mean([s["oracle_success"] for s in self.recent]),
                "intervention_rate": intervention_share(self.recent),
                "robot_minutes": step / self.env_config.control_hz / 60, "updates": self.updates,
                "wall_minutes": (time.perf_counter() - self.started) / 60,
                **{key: float(value) for key, value in self.metrics.items()}}, "train")
        elif mode == "eval":
            self.eval_block.append(stats)
            if len(self.eval_block) == self.config.eval_episodes:
                success = float(np.mean([s["oracle_success"] for s in self.eval_block]))
                self.logger.log(step, {"oracle_success_rate": success,
                                       "success_rate": np.mean([s["success"] for s in self.eval_block])}, "eval")
                self.eval_block = []
                self.finished = self.finished or success >= self.config.stop_success

    # -- persistence ------------------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"step": self.env_steps, "episodes": self.episodes, "updates": self.updates,
                "warmup_updates": self.warmup_updates, "init": self.config.init, "task": self.env_config.task,
                "rng_state": self.rng.bit_generator.state, "tidyarm_version": __version__}

    def checkpoint(self) -> None:
        tensors = {**self.agent.state_dict(), "torch_rng_state": torch.get_rng_state()}
        save_checkpoint(self.run_dir, tensors, {"online": self.online, "offline": self.offline}, self._meta())
        export_pixel_policy(self.run_dir, self.agent.actor, self.env_config, algo="hil-vsac", step=self.env_steps)
        self._last_checkpoint_step = self.env_steps

    def _restore(self) -> None:
        path = find_checkpoint(self.run_dir)
        meta = read_json(path / "meta.json")
        if meta.get("task") != self.env_config.task:
            raise ValueError(f"{path / 'meta.json'}: field 'task' is {meta.get('task')!r} but the policy "
                             f"{self.config.init!r} is for {self.env_config.task!r}")
        restore_agent(path, self.agent)
        self.online.load(path / "online.npz")
        self.offline.load(path / "offline.npz")
        self.env_steps, self.episodes, self.updates = int(meta["step"]), int(meta["episodes"]), int(meta["updates"])
        self.warmup_updates = int(meta["warmup_updates"])
        self.rng.bit_generator.state = meta["rng_state"]

    def _finish(self) -> dict:
        self.checkpoint()
        wall = time.perf_counter() - self.started
        summary = {"env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
                   "robot_hours": self.env_steps / self.env_config.control_hz / 3600,
                   "wall_seconds_this_session": wall, "update_share": self.update_seconds / max(wall, 1e-9),
                   "actor_connections": self.server.connections, "actor_disconnections": self.server.disconnections}
        write_json(self.run_dir / "summary.json", summary)
        return summary
