"""Reward classifier: labels, episode split, a tiny classifier that learns, checkpoints, the env wrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tidyarm.reward.classifier import ClassifierConfig, RewardClassifier, load_classifier, save_classifier
from tidyarm.reward.labels import (
    DONE,
    REWARD,
    behaviour_schedule,
    image_labels,
    label_from_marks,
    record_labelled,
    reward_from_marks,
    success_now,
)
from tidyarm.reward.train import FrameSet, TrainConfig, metrics, predict, split_episodes, train_classifier
from tidyarm.reward.wrapper import ClassifierReward, classified_success


# -- labels ------------------------------------------------------------------------------------------
def test_marks_round_trip_to_the_marked_frames():
    reward = reward_from_marks(10, [(3, 6), (8, 10)])
    assert reward.shape == (10, 1) and reward.dtype == np.float32
    assert reward[:, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1, 0]  # next.reward: the state the step led to
    with pytest.raises(ValueError, match="success mark"):
        reward_from_marks(10, [(0, 4)])
    with pytest.raises(ValueError, match="success mark"):
        reward_from_marks(10, [(5, 11)])


def test_label_from_marks_sets_reward_done_and_image_labels():
    from tidyarm.data.episodes import episodes_from_frames

    frames = [[{"x": np.zeros(1, np.float32)} for _ in range(length)] for length in (6, 4)]
    episodes = episodes_from_frames(10.0, {"x": {"dtype": "float32", "shape": [1], "names": None}}, frames,
                                    ["t", "t"])
    labelled = label_from_marks(episodes, {1: [(2, 4)]})
    assert labelled.frames[DONE][:, 0].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert image_labels(labelled).tolist() == [0] * 6 + [0, 0, 1, 1]  # exactly the marked frames
    with pytest.raises(ValueError, match="not in the dataset"):
        label_from_marks(episodes, {7: [(1, 2)]})
    with pytest.raises(ValueError, match="next.reward"):
        image_labels(episodes)


def test_behaviour_schedule_is_proportional_and_mixed():
    schedule = behaviour_schedule(20, {"expert": 0.5, "random": 0.25, "still": 0.25})
    assert schedule.count("expert") == 10 and schedule.count("random") == 5
    assert set(schedule[:4]) == {"expert", "random", "still"}
    with pytest.raises(ValueError, match="behaviour mix"):
        behaviour_schedule(5, {"dance": 1.0})


@pytest.fixture(scope="module")
def lift_pair():
    """An expert and a still-arm lift episode, randomization on, 16-px front camera."""
    return record_labelled("lift", 2, seed=3, cameras=("front",), image_size=16, supersample=1,
                           mix={"expert": 0.5, "still": 0.5})


def test_recorded_lift_labels_follow_the_success_state(lift_pair):
    """The expert's frames turn positive once the cube is held up and stay so; the still arm's never do;
    next.reward is the image label one frame earlier."""
    labelled = lift_pair
    episodes = labelled.episodes
    assert labelled.behaviours == ["expert", "still"]
    assert episodes.features[REWARD]["shape"] == [1] and episodes.frames["observation.images.front"].shape[1:] == \
        (16, 16, 3)
    labels = image_labels(episodes)
    (e_start, e_stop), (s_start, s_stop) = episodes.episode_bounds()
    expert = labels[e_start:e_stop]
    first = int(np.argmax(expert))
    assert expert.sum() >= 10 and expert[first:].all(), expert  # success reached and held to the end
    assert first > 5  # it takes the expert a while to grasp and lift
    assert labels[s_start:s_stop].sum() == 0
    reward = episodes.frames[REWARD][:, 0]
    assert np.array_equal(labels[e_start + 1:e_stop], reward[e_start:e_stop - 1])


def test_success_now_is_the_visible_lift_state():
    from tidyarm.sim.env import So101Env
    from tidyarm.sim.experts import make_expert

    env = So101Env("lift", randomization=None)
    expert = make_expert(env)
    env.reset(seed=1)
    assert not success_now(env)
    seen_success, first_visible = False, None
    for step in range(env.max_episode_steps):
        _, _, _, _, info = env.step(expert())
        if success_now(env) and first_visible is None:
            first_visible = step
        if info["success"]:
            seen_success = True
            break
    # The task's predicate adds a one-second hold on top of the visible state.
    assert seen_success and first_visible is not None and step - first_visible >= env.task.hold_steps - 1


# -- split and metrics -------------------------------------------------------------------------------
def test_episode_split_is_disjoint_stratified_and_leak_free():
    ids = list(range(40))
    groups = ["expert"] * 20 + ["random"] * 20
    train, val, test = split_episodes(ids, groups, seed=1)
    assert sorted(train + val + test) == ids
    assert not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))
    assert sum(i < 20 for i in test) == 3 and sum(i >= 20 for i in test) == 3
    frames = FrameSet({"front": np.zeros((400, 4, 4, 3), np.uint8)}, np.zeros(400, np.float32),
                      np.repeat(np.arange(40), 10))
    assert set(frames.subset(train).episode).isdisjoint(frames.subset(test).episode)
    assert len(frames.subset(test).labels) == 10 * len(test)
    # Groups too small to give validation or test an episode each still leave neither empty.
    train, val, test = split_episodes(range(8), ["a", "a", "b", "b", "c", "d", "e", "f"])
    assert len(val) == 1 and len(test) == 1 and sorted(train + val + test) == list(range(8))


def test_metrics_confusion_matrix():
    scores = metrics(np.array([0.9, 0.8, 0.2, 0.7, 0.1]), np.array([1, 1, 1, 0, 0]), 0.5)
    assert (scores["tp"], scores["fp"], scores["fn"], scores["tn"]) == (2, 1, 1, 1)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)


# -- a tiny classifier learns ------------------------------------------------------------------------
def _synthetic(episodes: int, seed: int) -> FrameSet:
    """Noisy 16-px frames; success frames hold a bright 4x4 square somewhere (a 'lifted cube')."""
    rng = np.random.default_rng(seed)
    count = episodes * 10
    images = rng.integers(0, 120, size=(count, 16, 16, 3)).astype(np.uint8)
    labels = (rng.random(count) < 0.4).astype(np.float32)
    for index in np.flatnonzero(labels):
        row, col = rng.integers(0, 12, size=2)
        images[index, row:row + 4, col:col + 4] = 250
    return FrameSet({"front": images}, labels, np.repeat(np.arange(episodes), 10))


def test_tiny_classifier_separates_clearly_different_frames():
    torch.manual_seed(0)
    config = ClassifierConfig("lift", ("front",), image_size=16, filters=8, hidden=16)
    untrained = RewardClassifier(config)
    test = _synthetic(20, seed=2)
    chance = metrics(predict(untrained, test), test.labels, 0.5)["accuracy"]
    classifier, summary = train_classifier(_synthetic(40, 0), _synthetic(10, 1), config,
                                           TrainConfig(steps=120, batch_size=32, lr=1e-3, eval_every=60),
                                           log=lambda message: None)
    scores = metrics(predict(classifier, test), test.labels, classifier.threshold)
    assert scores["f1"] > 0.9 and scores["accuracy"] > chance + 0.25, (scores, chance)
    assert summary["validation"]["f1"] > 0.9 and 0.0 < classifier.threshold < 1.0


# -- checkpoint and input checks ---------------------------------------------------------------------
def test_checkpoint_round_trip_and_refusals(tmp_path):
    config = ClassifierConfig("lift", ("front", "wrist"), image_size=16, filters=4, hidden=8)
    classifier = RewardClassifier(config, threshold=0.35)
    save_classifier(classifier, tmp_path / "clf", {"metrics": {"test": {"f1": 0.5}}})
    obs = {"front": np.full((32, 32, 3), 90, np.uint8), "wrist": np.zeros((32, 32, 3), np.uint8)}
    loaded = load_classifier(tmp_path / "clf", task="lift", cameras=("front", "wrist"), image_size=32)
    assert loaded.threshold == 0.35 and loaded.config == config
    assert np.allclose(loaded.probability(obs), classifier.probability(obs))
    with pytest.raises(ValueError, match="task is 'lift'; expected 'place'"):
        load_classifier(tmp_path / "clf", task="place")
    with pytest.raises(ValueError, match="cameras"):
        load_classifier(tmp_path / "clf", cameras=("front",))
    with pytest.raises(ValueError, match="image_size is 16"):
        load_classifier(tmp_path / "clf", image_size=24)
    with pytest.raises(ValueError, match="expected uint8"):
        classifier.probability({**obs, "front": obs["front"].astype(np.float32)})
    with pytest.raises(ValueError, match="multiple of 16"):
        classifier.probability({**obs, "front": np.zeros((20, 20, 3), np.uint8)})
    with pytest.raises(ValueError, match="no camera 'wrist'"):
        classifier.probability({"front": obs["front"]})


# -- the wrapper ---------------------------------------------------------------------------------------
class _LyingEnv(gym.Env):
    """Frames bright on the steps listed in `bright`; info["success"] and privileged state always lie."""

    def __init__(self, bright: set[int], steps: int = 10):
        self.bright, self.steps = bright, steps
        self.observation_space = gym.spaces.Dict({"front": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)})
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def _obs(self):
        return {"front": np.full((16, 16, 3), 255 if self.t in self.bright else 0, np.uint8)}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {"success": True}

    def step(self, action):
        self.t += 1
        lie = {"success": True, "privileged": np.ones(3), "reward_terms": {"success": 1.0}}
        return self._obs(), 100.0, False, self.t >= self.steps, lie


class _Brightness(RewardClassifier):
    """A stand-in classifier: P(success) = mean brightness of the front frame."""

    def probability(self, obs):
        return np.array([np.asarray(obs["front"]).mean() / 255.0], dtype=np.float32)


def _run(env) -> list[tuple]:
    env.reset(seed=0)
    out, done = [], False
    while not done:
        _, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        out.append((reward, terminated, info["classifier_probability"]))
        done = terminated or truncated
    return out


def test_wrapper_rewards_from_frames_not_from_info():
    classifier = _Brightness(ClassifierConfig("lift", ("front",), image_size=16, filters=2, hidden=2))
    steps = _run(ClassifierReward(_LyingEnv(bright={3, 5, 6, 7}), classifier, threshold=0.5,
                                  terminate_on_success=False))
    assert [reward for reward, _, _ in steps] == [0, 0, 1, 0, 1, 1, 1, 0, 0, 0]
    assert steps[2][2] == 1.0 and steps[0][2] == 0.0
    # Two consecutive frames needed, and the episode ends on success.
    steps = _run(ClassifierReward(_LyingEnv(bright={3, 5, 6, 7}), classifier, threshold=0.5, success_frames=2))
    assert [reward for reward, _, _ in steps] == [0, 0, 0, 0, 0, 1] and steps[-1][1]
    # Never bright: the env's info says success every step, the wrapper says no.
    steps = _run(ClassifierReward(_LyingEnv(bright=set()), classifier, threshold=0.5))
    assert sum(reward for reward, _, _ in steps) == 0 and len(steps) == 10
    assert classified_success(np.array([0.9, 0.9, 0.1, 0.9, 0.9, 0.9]), 0.5, 2).tolist() == \
        [False, True, False, False, True, True]


def test_wrapper_on_so101_pixels_and_bad_setups():
    from tidyarm.sim.env import So101Env

    classifier = RewardClassifier(ClassifierConfig("lift", ("front",), image_size=16, filters=4, hidden=4))
    env = ClassifierReward(So101Env("lift", obs_mode="pixels", image_size=32, cameras=("front",)), classifier)
    obs, _ = env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert reward in (0.0, 1.0) and 0.0 <= info["classifier_probability"] <= 1.0
    with pytest.raises(ValueError, match="lack camera"):
        ClassifierReward(So101Env("lift", obs_mode="state"), classifier)
    with pytest.raises(ValueError, match="success_frames"):
        ClassifierReward(_LyingEnv(set()), classifier, success_frames=0)


def test_labelled_dataset_written_and_read_back_keeps_the_labels(tmp_path, lift_pair):
    from tidyarm.data.reader import read_dataset
    from tidyarm.reward.labels import write_labelled

    labelled = lift_pair
    write_labelled(labelled.episodes, tmp_path / "ds", vcodec="libx264")
    read = read_dataset(tmp_path / "ds")
    assert read.features[REWARD]["dtype"] == "float32" and read.features[DONE]["dtype"] == "bool"
    assert np.array_equal(image_labels(read), image_labels(labelled.episodes))
    assert read.frames[DONE].reshape(-1).tolist() == labelled.episodes.frames[DONE].reshape(-1).tolist()
