"""Replay buffer, n-step accumulation (episode-boundary semantics) and mixed online/offline batches."""

import gymnasium
import numpy as np
import pytest

from tidyarm.rl.replay import NStepAccumulator, ReplayBuffer, sample_mixed

BOX = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)


def _obs(i: int) -> np.ndarray:
    return np.full(3, i, dtype=np.float32)


def _run_episode(accumulator, rewards, terminated_at_end: bool, truncated_at_end: bool):
    """Push one episode whose observation i is _obs(i); return every transition the accumulator emits."""
    transitions = []
    for i, reward in enumerate(rewards):
        last = i == len(rewards) - 1
        transitions += accumulator.push(_obs(i), np.array([0.1 * i]), reward, _obs(i + 1),
                                        terminated=last and terminated_at_end, truncated=last and truncated_at_end)
    return transitions


def test_one_step_transitions_bootstrap_unless_terminated():
    accumulator = NStepAccumulator(n=1, gamma=0.9)
    transitions = _run_episode(accumulator, [1.0, 2.0, 3.0], terminated_at_end=True, truncated_at_end=False)
    assert [t.reward for t in transitions] == [1.0, 2.0, 3.0]
    assert [t.discount for t in transitions] == pytest.approx([0.9, 0.9, 0.9])
    assert [t.terminated for t in transitions] == [False, False, True]
    for i, transition in enumerate(transitions):
        np.testing.assert_array_equal(transition.obs, _obs(i))
        np.testing.assert_array_equal(transition.next_obs, _obs(i + 1))


def test_one_step_truncation_bootstraps_from_final_observation():
    accumulator = NStepAccumulator(n=1, gamma=0.9)
    transitions = _run_episode(accumulator, [1.0, 2.0], terminated_at_end=False, truncated_at_end=True)
    assert [t.terminated for t in transitions] == [False, False]
    np.testing.assert_array_equal(transitions[-1].next_obs, _obs(2))
    assert len(accumulator) == 0


@pytest.mark.parametrize("terminated", [True, False])
def test_three_step_returns_at_episode_end(terminated):
    # gamma 0.9, rewards 1..5, the episode ends (terminated or time-limit truncated) on its 5th step.
    accumulator = NStepAccumulator(n=3, gamma=0.9)
    transitions = _run_episode(accumulator, [1.0, 2.0, 3.0, 4.0, 5.0], terminated, not terminated)
    expected_returns = [1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4 + 0.81 * 5, 4 + 0.9 * 5, 5]
    expected_discounts = [0.729, 0.729, 0.729, 0.81, 0.9]  # gamma**k with the actual k of each transition
    expected_next = [3, 4, 5, 5, 5]  # the last three all end at the final observation
    assert [t.reward for t in transitions] == pytest.approx(expected_returns)
    assert [t.discount for t in transitions] == pytest.approx(expected_discounts)
    for i, transition in enumerate(transitions):
        np.testing.assert_array_equal(transition.obs, _obs(i))
        np.testing.assert_array_equal(transition.next_obs, _obs(expected_next[i]))
    # Only a real terminal state stops bootstrapping, and only for the steps flushed at the end.
    assert [t.terminated for t in transitions] == [False, False, terminated, terminated, terminated]


def test_episode_shorter_than_n_and_no_mixing_across_episodes():
    accumulator = NStepAccumulator(n=3, gamma=0.5)
    first = _run_episode(accumulator, [1.0, 1.0], terminated_at_end=True, truncated_at_end=False)
    assert [t.reward for t in first] == pytest.approx([1.5, 1.0])
    assert [t.discount for t in first] == pytest.approx([0.25, 0.5])
    assert all(t.terminated for t in first)
    # The next episode starts clean: its first transition only sums its own rewards.
    second = _run_episode(accumulator, [10.0, 20.0, 30.0], terminated_at_end=False, truncated_at_end=False)
    assert [t.reward for t in second] == pytest.approx([10.0 + 0.5 * 20.0 + 0.25 * 30.0])
    assert len(accumulator) == 2
    accumulator.reset()
    assert len(accumulator) == 0


def test_pending_steps_are_copies_of_reused_arrays():
    accumulator = NStepAccumulator(n=2, gamma=0.9)
    obs = np.zeros(3, dtype=np.float32)
    accumulator.push(obs, np.zeros(1), 1.0, obs + 1, False, False)
    obs[:] = 7.0  # an env that writes its observations in place
    (transition,) = accumulator.push(obs, np.zeros(1), 1.0, obs + 1, False, False)
    np.testing.assert_array_equal(transition.obs, np.zeros(3))


@pytest.mark.parametrize("kwargs", [dict(n=0, gamma=0.9), dict(n=1, gamma=1.5)])
def test_accumulator_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="n=0|gamma=1.5"):
        NStepAccumulator(**kwargs)


def test_ring_buffer_overwrites_oldest():
    buffer = ReplayBuffer(BOX, action_dim=1, capacity=3)
    for i in range(5):
        buffer.add(_obs(i), np.array([i]), float(i), _obs(i + 1), 0.9, False)
    assert len(buffer) == 3
    batch = buffer.sample(200, np.random.default_rng(0))
    assert set(batch["reward"].tolist()) == {2.0, 3.0, 4.0}
    np.testing.assert_array_equal(batch["next_obs"][:, 0], batch["reward"] + 1)
    assert batch["obs"].dtype == np.float32 and batch["terminated"].dtype == bool


def test_dict_observations_keep_their_dtypes():
    space = gymnasium.spaces.Dict({
        "pixels": gymnasium.spaces.Box(0, 255, (4, 4, 3), np.uint8),
        "state": gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32),
    })
    buffer = ReplayBuffer(space, action_dim=2, capacity=10)
    obs = {"pixels": np.full((4, 4, 3), 200, np.uint8), "state": np.ones(2, np.float32)}
    buffer.add(obs, np.zeros(2), 1.0, obs, 0.99, True)
    batch = buffer.sample(4, np.random.default_rng(0))
    assert batch["obs"]["pixels"].dtype == np.uint8 and batch["obs"]["pixels"].shape == (4, 4, 4, 3)
    assert batch["next_obs"]["state"].dtype == np.float32
    assert batch["terminated"].all()
    with pytest.raises(ValueError, match="keys"):
        buffer.add({"pixels": obs["pixels"]}, np.zeros(2), 1.0, obs, 0.99, False)


def test_add_rejects_wrong_action_shape_and_empty_sample():
    buffer = ReplayBuffer(BOX, action_dim=2, capacity=4)
    with pytest.raises(ValueError, match="action shape"):
        buffer.add(_obs(0), np.zeros(3), 0.0, _obs(1), 0.9, False)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, np.random.default_rng(0))


def _filled_buffer(capacity: int, count: int, obs_dim: int = 3) -> ReplayBuffer:
    rng = np.random.default_rng(1)
    buffer = ReplayBuffer(gymnasium.spaces.Box(-1.0, 1.0, (obs_dim,), np.float32), 2, capacity)
    for i in range(count):
        buffer.add(rng.normal(size=obs_dim), rng.normal(size=2), rng.normal(), rng.normal(size=obs_dim),
                   0.99**(1 + i % 3), i % 4 == 0)
    return buffer


def test_save_load_roundtrip(tmp_path):
    buffer = _filled_buffer(capacity=8, count=11)  # wrapped around: cursor in the middle
    path = tmp_path / "replay.npz"
    buffer.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]  # no temp file left behind
    restored = ReplayBuffer(BOX, action_dim=2, capacity=8)
    restored.load(path)
    assert len(restored) == len(buffer)
    for name, value in buffer.state_dict().items():
        np.testing.assert_array_equal(restored.state_dict()[name], value)
    first = buffer.sample(16, np.random.default_rng(3))
    second = restored.sample(16, np.random.default_rng(3))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.parametrize(("other", "field"), [
    (lambda: ReplayBuffer(BOX, action_dim=2, capacity=4), "capacity 4"),
    (lambda: ReplayBuffer(gymnasium.spaces.Box(-1, 1, (4,), np.float32), 2, 8), "'obs'"),
    (lambda: ReplayBuffer(BOX, action_dim=3, capacity=8), "'action'"),
    (lambda: ReplayBuffer(gymnasium.spaces.Dict({"state": BOX}), 2, 8), "obs/state"),
])
def test_load_mismatch_names_file_and_field(tmp_path, other, field):
    path = tmp_path / "replay.npz"
    _filled_buffer(capacity=8, count=5).save(path)
    with pytest.raises(ValueError, match=field) as error:
        other().load(path)
    assert str(path) in str(error.value)


def test_sample_mixed_takes_half_from_each_buffer():
    online, offline = ReplayBuffer(BOX, 1, 10), ReplayBuffer(BOX, 1, 10)
    for i in range(5):
        online.add(_obs(i), np.zeros(1), 1.0, _obs(i), 0.9, False)
        offline.add(_obs(i), np.zeros(1), -1.0, _obs(i), 0.9, True)
    rng = np.random.default_rng(0)
    batch = sample_mixed(online, offline, 256, rng)
    assert batch["reward"].shape == (256,) and batch["obs"].shape == (256, 3)
    assert (batch["reward"] == -1.0).sum() == 128
    assert batch["terminated"].sum() == 128
    quarter = sample_mixed(online, offline, 100, rng, offline_fraction=0.25)
    assert (quarter["reward"] == -1.0).sum() == 25
    # No (or an empty) offline buffer: everything comes from online.
    assert (sample_mixed(online, None, 64, rng)["reward"] == 1.0).all()
    assert (sample_mixed(online, ReplayBuffer(BOX, 1, 4), 64, rng)["reward"] == 1.0).all()
    with pytest.raises(ValueError, match="offline_fraction"):
        sample_mixed(online, offline, 8, rng, offline_fraction=1.5)


def test_sample_mixed_concatenates_dict_observations():
    space = gymnasium.spaces.Dict({"pixels": gymnasium.spaces.Box(0, 255, (2, 2, 3), np.uint8)})
    online, offline = ReplayBuffer(space, 1, 4), ReplayBuffer(space, 1, 4)
    obs = {"pixels": np.zeros((2, 2, 3), np.uint8)}
    online.add(obs, np.zeros(1), 0.0, obs, 0.9, False)
    offline.add(obs, np.zeros(1), 0.0, obs, 0.9, False)
    batch = sample_mixed(online, offline, 6, np.random.default_rng(0))
    assert batch["obs"]["pixels"].shape == (6, 2, 2, 3) and batch["obs"]["pixels"].dtype == np.uint8


def test_load_into_a_larger_buffer_keeps_transitions_oldest_first(tmp_path):
    buffer = ReplayBuffer(BOX, action_dim=2, capacity=8)
    for step in range(11):  # wraps around: holds steps 3..10, the cursor in the middle
        buffer.add(np.zeros(BOX.shape), np.zeros(2), float(step), np.zeros(BOX.shape), 0.99, False)
    path = tmp_path / "replay.npz"
    buffer.save(path)
    larger = ReplayBuffer(BOX, action_dim=2, capacity=20)
    larger.load(path)
    np.testing.assert_array_equal(larger.state_dict()["reward"], np.arange(3, 11))
    larger.add(np.zeros(BOX.shape), np.zeros(2), 11.0, np.zeros(BOX.shape), 0.99, False)
    np.testing.assert_array_equal(larger.state_dict()["reward"], np.arange(3, 12))
