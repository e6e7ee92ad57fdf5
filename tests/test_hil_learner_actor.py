"""HIL-SERL end to end on the simulated robot: buffers, a killed actor restarted without losing the learner's
state, resume from the checkpoint with both buffers, and a lost link that holds the arm."""

import dataclasses
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from tidyarm.hil.actor import Actor
from tidyarm.hil.command import ActorSupervisor
from tidyarm.hil.config import DEFAULT_HIL_SAC, HILConfig
from tidyarm.hil.learner import Learner
from tidyarm.hil.transport import LearnerServer, LinkLost
from tidyarm.reward.classifier import ClassifierConfig, RewardClassifier, save_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_SAC = dataclasses.replace(DEFAULT_HIL_SAC, batch_size=16, learning_starts=60, critic_warmup_steps=5)


@pytest.fixture
def config(tmp_path) -> HILConfig:
    torch.manual_seed(0)
    classifier = save_classifier(RewardClassifier(ClassifierConfig(task="lift")), tmp_path / "classifier")
    return HILConfig(classifier=classifier, robot="sim-gap", run_dir=tmp_path / "run", total_steps=240, demos=1,
                     eval_every=2, eval_episodes=1, max_ahead=60, weights_every=5, checkpoint_every=100, sac=TINY_SAC)


def _episode(mode: str, intervened: list[bool], index: int = 0) -> dict:
    steps, rng = len(intervened), np.random.default_rng(0)
    obs = {"proprio": rng.normal(size=(steps + 1, 21)).astype(np.float32),
           **{camera: rng.integers(0, 256, (steps + 1, 32, 32, 3), dtype=np.uint8) for camera in ("wrist", "front")}}
    return {"type": "episode", "index": index, "mode": mode, "terminated": True, "obs": obs,
            "actions": rng.uniform(-1, 1, (steps, 5)).astype(np.float32), "rewards": np.eye(steps)[-1],
            "intervened": np.array(intervened)}


def test_policy_steps_go_online_and_intervention_segments_offline(config):
    learner = Learner(config)
    try:
        learner.store_episode(_episode("train", [False, True, True, False, False, True]))
        assert len(learner.online) == 6
        assert len(learner.offline) == 3  # the run of steps 1-2, cut when control went back, and step 5
        gamma = config.sac.gamma
        discounts = learner.offline.state_dict()["discount"][:3]
        np.testing.assert_allclose(discounts, [gamma**2, gamma, gamma])  # the cut segment bootstraps
        assert learner.offline.state_dict()["terminated"][:3].tolist() == [False, False, True]
        learner.store_episode(_episode("demo", [False] * 4))
        assert (len(learner.online), len(learner.offline)) == (6, 7)  # demos are offline only
    finally:
        learner.server.close()
        learner.logger.close()


def test_a_killed_actor_is_restarted_and_the_learner_resumes_with_both_buffers(config):
    learner = Learner(config)
    supervisor = ActorSupervisor(dataclasses.replace(config, learner=learner.server.address), max_restarts=2)
    killed = []

    def kill_once_then_supervise():
        if not killed and learner.episodes >= 2 and supervisor.process.is_alive():
            os.kill(supervisor.process.pid, signal.SIGKILL)  # mid-episode, without a goodbye
            killed.append(learner.episodes)
        supervisor.check()

    try:
        summary = learner.run(on_idle=kill_once_then_supervise)
    finally:
        supervisor.stop()
    assert killed and supervisor.restarts == 1
    assert summary["actor_connections"] == 2 and summary["env_steps"] >= config.total_steps
    assert learner.updates > 0 and len(learner.offline) > 0
    episodes = [row for row in (config.run_dir / "metrics.csv").read_text().splitlines() if "/steps," in row]
    assert len(episodes) == learner.episodes  # every episode logged once, none lost or doubled
    assert (config.run_dir / "policy.json").is_file()

    resumed = Learner(config, resume=True)
    try:
        assert (resumed.env_steps, resumed.episodes, resumed.updates) == \
            (learner.env_steps, learner.episodes, learner.updates)
        assert (len(resumed.online), len(resumed.offline)) == (len(learner.online), len(learner.offline))
        for key, value in learner.agent.state_dict().items():
            assert torch.equal(value, resumed.agent.state_dict()[key]), key
    finally:
        resumed.server.close()
        resumed.logger.close()


def test_a_lost_link_holds_the_arm_and_the_actor_gives_up_after_the_reconnect_timeout(config):
    server = LearnerServer("127.0.0.1:0", config.authkey)
    learner_config = dataclasses.replace(config, learner=server.address, intervener="none", demos=0,
                                         reconnect_timeout=0.5, link_timeout=5.0)
    actor = Actor(learner_config)

    def learner_that_dies():
        while not server.connected:
            time.sleep(0.01)
        weights = {key: value.numpy() for key, value in actor.actor.state_dict().items()}
        status = {"episodes": 0, "env_steps": 0, "allowed_steps": 10_000, "done": False, "weights_version": 1}
        server.send({"type": "weights", "weights": weights, "status": status})
        time.sleep(0.5)  # the actor is mid-episode now
        server.close()

    thread = threading.Thread(target=learner_that_dies)
    thread.start()
    with pytest.raises(LinkLost, match="cannot reach the learner"):
        actor.run()
    thread.join()
    counts = actor.robot.safety.counts
    assert counts["link_lost_holds"] == 1 and counts["commands"] > 0


def test_hil_command_refuses_a_missing_classifier_and_a_state_policy(config):
    from tidyarm.hil.command import HILCommand, run_hil

    with pytest.raises(ValueError, match="--classifier"):
        run_hil(HILCommand(dataclasses.replace(config, classifier=None)))
    with pytest.raises(ValueError, match="pixel policies"):
        Learner(dataclasses.replace(config, init="pretrained:lift"))


@pytest.mark.parametrize(("field", "value"), [("max_episode_steps", 0), ("total_steps", 0), ("robot", "ur5"),
                                              ("intervener", "telepathy")])
def test_config_refuses_bad_values_naming_the_field(config, field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(config, **{field: value})


def test_the_actor_env_has_the_configured_episode_limit(config):
    from tidyarm.hil.actor import make_hil_env

    env, _ = make_hil_env(dataclasses.replace(config, max_episode_steps=7))
    try:
        env.reset(seed=0)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, np.float32))
            steps, done = steps + 1, terminated or truncated
        assert steps == 7
    finally:
        env.close()
