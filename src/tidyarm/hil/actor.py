"""The HIL-SERL actor: runs the policy on the robot, lets the intervener step in, ships whole episodes.

It owns the robot (on the robot's computer) and holds no learning state: the learner tells it, on connecting,
which episode comes next and sends fresh weights as it learns. Reward and success come from the reward
classifier over the camera frames (`ClassifierReward`); a simulated robot's evaluation oracle is recorded
beside them for measurement and never reaches the learner's reward.

Safety: whenever the link to the learner is lost (broken socket, or silence for `link_timeout`), the arm
holds its measured position (`robot.link_lost()`) before anything else happens; the episode in flight is
dropped and the actor reconnects, then starts a new episode.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from tidyarm.hil.config import HILConfig
from tidyarm.hil.intervention import checked_action, make_intervener
from tidyarm.hil.transport import ActorLink, LinkLost
from tidyarm.reward.classifier import load_classifier
from tidyarm.reward.wrapper import ClassifierReward
from tidyarm.rl.pixel_actor import PixelActor, pixel_action

log = logging.getLogger(__name__)


def load_hil_classifier(config: HILConfig, env_config):
    """The run's reward classifier, refused when missing or made for another task or image size."""
    if config.classifier is None:
        raise ValueError("no reward classifier: pass --classifier DIR (train one with `tidyarm train-reward`)")
    return load_classifier(config.classifier, task=env_config.task, image_size=env_config.image_size)


def make_hil_env(config: HILConfig):
    """The robot env of the starting policy's config, rewarded by the classifier; and the policy it starts from."""
    from tidyarm.robot.deploy import load_pixel_policy, make_robot_env

    loaded = load_pixel_policy(config.init)
    classifier = load_hil_classifier(config, loaded.env_config)
    env = make_robot_env(config.robot, loaded, config.realtime, config.seed, config.max_episode_steps)
    reward = ClassifierReward(env, classifier, config.classifier_threshold, success_frames=config.success_frames)
    return reward, loaded


class Actor:
    """One actor process: connect, run episodes as the learner allows, reconnect when the link drops."""

    def __init__(self, config: HILConfig, env=None, loaded=None, intervener=None):
        if config.learner is None:
            raise ValueError("the actor needs the learner's address: --learner HOST:PORT")
        torch.set_num_threads(config.threads)
        self.config = config
        if env is None:
            env, loaded = make_hil_env(config)
        self.env, self.robot = env, env.unwrapped.robot
        self.actor = PixelActor(loaded.policy.net, int(loaded.meta["action_dim"]), stochastic=True).eval()
        self.intervener = intervener or make_intervener(config.intervener)
        self.link = ActorLink(config.learner, config.authkey, config.link_timeout)
        self.status: dict = {}
        self.weights_received = 0

    def run(self) -> None:
        """Until the learner says done. LinkLost escapes only when the learner stays unreachable."""
        try:
            while True:
                self.link.connect(self.config.reconnect_timeout)
                try:
                    self._session()
                    return
                except LinkLost as error:
                    if self.robot.is_connected:
                        self.robot.link_lost()
                    log.warning("link to the learner lost (%s): the arm holds; reconnecting", error)
        finally:
            self.link.close()
            self.env.close()

    def _session(self) -> None:
        received = self.weights_received
        self._wait(lambda: self.weights_received > received)  # a (re)connected actor acts on fresh weights only
        episode, steps = self.status["episodes"], self.status["env_steps"]
        while not self.status["done"]:
            self._wait(lambda sent=steps: self.status["done"] or sent < self.status["allowed_steps"])
            if self.status["done"]:
                break
            record = play_episode(self.env, self._act, self.intervener, self.config.episode_mode(episode),
                                  self.config.seed + episode, between_steps=self._drain)
            self.link.send({"type": "episode", "index": episode, **record})
            episode, steps = episode + 1, steps + len(record["actions"])
            self._drain()

    def _wait(self, ready, poll: float = 0.05) -> None:
        while not ready():
            self._apply(self.link.receive(wait=poll))

    def _drain(self) -> None:
        self._apply(self.link.receive())

    def _apply(self, messages: list[dict]) -> None:
        for message in messages:
            if "weights" in message:
                self.actor.load_state_dict({key: torch.from_numpy(value) for key, value in message["weights"].items()})
                self.weights_received += 1
            self.status.update(message["status"])

    def _act(self, obs: dict, deterministic: bool) -> np.ndarray:
        return pixel_action(self.actor, obs, deterministic, torch.device("cpu"))


def play_episode(env, act, intervener, mode: str, seed: int, between_steps=lambda: None) -> dict:
    """One episode: 'demo' (the intervener drives), 'train' (policy samples, intervener may step in) or
    'eval' (deterministic policy, nobody steps in). `act(obs, deterministic)` is the policy; `between_steps`
    runs after every tick (the actor's link: fresh weights, the link's health). Returns the episode as arrays
    plus its statistics."""
    space, counts, control_hz = env.action_space, {}, env.unwrapped.robot.control_hz
    # Evaluation runs to the time limit, so the oracle can see the whole hold it measures success by.
    env.terminate_on_success = mode != "eval"
    started, obs = time.perf_counter(), env.reset(seed=seed)[0]
    intervener.reset(env)
    observations, actions, rewards, intervened = [obs], [], [], []
    oracle = terminated = truncated = False
    while not (terminated or truncated):
        action, override = act(obs, deterministic=mode == "eval"), None
        if mode == "demo":
            override = checked_action(intervener.demonstrate(obs), space, counts)
        elif mode == "train":
            proposed = intervener(obs, action)
            override = None if proposed is None else checked_action(proposed, space, counts)
        action = action if override is None else override
        obs, reward, terminated, truncated, info = env.step(action)
        between_steps()
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        intervened.append(override is not None)
        oracle = oracle or info.get("oracle_success", False)
    steps, success = len(actions), bool(np.any(np.asarray(rewards) > 0))
    if success and not terminated:  # an evaluation ran on past its success: the learner gets it as it ended
        keep = int(np.argmax(np.asarray(rewards) > 0)) + 1
        observations, actions, rewards, intervened = observations[:keep + 1], actions[:keep], rewards[:keep], \
            intervened[:keep]
        terminated = True
    return {"mode": mode, "seed": seed, "terminated": bool(terminated),
            "obs": {key: np.stack([o[key] for o in observations]) for key in observations[0]},
            "actions": np.stack(actions), "rewards": np.asarray(rewards, np.float32),
            "intervened": np.asarray(intervened), "stats": {
                "steps": steps, "success": success, "oracle_success": bool(oracle),
                "intervention_rate": float(np.mean(intervened)), "robot_seconds": steps / control_hz,
                "wall_seconds": time.perf_counter() - started, "rejected_interventions": counts.get("rejected", 0),
                "clipped_interventions": counts.get("clipped", 0)}}


def run_actor(config: HILConfig) -> None:
    """Entry point of the actor process."""
    logging.basicConfig(level=logging.INFO, format="[actor] %(message)s")
    Actor(config).run()
