"""Recording: the expert's ee-mode demonstrations replay in joint mode; datasets on disk survive a kill."""

import numpy as np
import pytest

from tidyarm.data.record import (
    MissedGrasp,
    clean_targets,
    make_record_env,
    record_episode,
    record_expert_episodes,
)
from tidyarm.data.so101_features import (
    ACTION,
    ENVIRONMENT_STATE,
    STATE,
    STATE_NAMES,
    action_from_env,
    env_action_from_joint_targets,
    features_from_env,
    from_lerobot_units,
    gripper_range,
    to_lerobot_units,
)
from tidyarm.sim import So101Env
from tidyarm.sim.experts import make_expert


def test_units_round_trip_and_gripper_scale():
    env = So101Env("place", action_mode="joint")
    low, high = gripper_range(env)
    joints = np.array([0.3, -1.0, 1.2, -0.5, 2.0, low])
    values = to_lerobot_units(joints, (low, high))
    assert values[0] == pytest.approx(np.degrees(0.3), abs=1e-4)
    assert values[5] == pytest.approx(0.0)  # closed
    assert to_lerobot_units(np.array([0, 0, 0, 0, 0, high]), (low, high))[5] == pytest.approx(100.0)
    np.testing.assert_allclose(from_lerobot_units(values, (low, high)), joints, atol=1e-6)


def test_env_action_from_joint_targets_rejects_bad_input():
    env = So101Env("place", action_mode="joint")
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        env_action_from_joint_targets(env, np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        env_action_from_joint_targets(env, np.array([0, 0, np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="action_mode='joint'"):
        env_action_from_joint_targets(So101Env("place", action_mode="ee"), np.zeros(6))


def test_expert_episodes_replay_in_joint_mode():
    """Record the place expert in ee mode; the recorded joint-target actions, replayed in a joint-mode env
    on the same seed, must succeed too and follow the same joint trajectory."""
    episodes = record_expert_episodes("place", episodes=2, seed=0)
    assert episodes.num_episodes == 2
    assert episodes.features[STATE]["names"] == list(STATE_NAMES)
    assert episodes.frames[ACTION].dtype == np.float32 and episodes.frames[ACTION].shape[1] == 6
    assert episodes.frames[ENVIRONMENT_STATE].shape[1] == episodes.features[ENVIRONMENT_STATE]["shape"][0]
    for (start, stop), seed in zip(episodes.episode_bounds(), (0, 1), strict=True):
        env = So101Env("place", action_mode="joint")
        obs, _ = env.reset(seed=seed)
        replayed, success = [], False
        for action in episodes.frames[ACTION][start:stop]:
            replayed.append(features_from_env(env, obs)[STATE])
            obs, _, _, _, info = env.step(env_action_from_joint_targets(env, action))
            success |= info["success"]
        assert success
        error = np.abs(np.array(replayed) - episodes.frames[STATE][start:stop])
        # Identical servo commands (to float32 rounding); contact makes single frames drift by a few degrees.
        assert np.median(error) < 0.05 and error.max() < 15.0


def test_record_command_writes_a_lerobot_dataset(tmp_path):
    from tidyarm.data.reader import read_dataset
    from tidyarm.data.session import RecordCommand, record

    command = RecordCommand(task="reach", episodes=2, root=tmp_path / "ds", cameras=("front",), image_size=32)
    summary = record(command)
    assert (summary.kept, summary.frames) == (2, 100) and summary.bytes > 0
    episodes = read_dataset(tmp_path / "ds")
    assert episodes.num_episodes == 2 and episodes.frames["observation.images.front"].shape == (100, 32, 32, 3)
    assert episodes.features["observation.images.front"]["dtype"] == "video"
    with pytest.raises(ValueError, match="not empty"):
        record(command)
    with pytest.raises(ValueError, match="unknown camera"):
        RecordCommand(cameras=("top",))


KILLED_RECORDING = """
from tidyarm.data.session import RecordCommand, record
record(RecordCommand(task="reach", episodes=10_000, root={root!r}, cameras=("front",), image_size=32))
"""


def test_killed_recording_keeps_finished_episodes(tmp_path):
    import contextlib
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from tidyarm.data.reader import read_dataset
    from tidyarm.data.session import RecordCommand, record

    root = tmp_path / "ds"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RECORDING.format(root=str(root))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved, deadline = 0, time.monotonic() + 60
    try:
        while saved < 3 and time.monotonic() < deadline:  # wait until a few episodes are finished
            time.sleep(0.05)
            with contextlib.suppress(FileNotFoundError):
                saved = json.loads((root / "meta/info.json").read_text())["total_episodes"]
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert saved >= 3
    episodes = read_dataset(root)  # opens, holding every episode finished before the kill
    assert episodes.num_episodes >= saved
    assert all(stop - start == 50 for start, stop in episodes.episode_bounds())
    resumed = record(RecordCommand(task="reach", episodes=2, root=root, cameras=("front",), image_size=32,
                                   seed=1000, resume=True))
    assert (resumed.kept, resumed.next_seed) == (2, 1002)
    assert read_dataset(root).num_episodes == episodes.num_episodes + 2


def test_clean_targets_are_what_the_action_commands_and_leave_the_controller_alone():
    env = make_record_env("place")
    obs, _ = env.reset(seed=0)
    action = make_expert(env)(obs)
    label = clean_targets(env, action)
    np.testing.assert_array_equal(label, clean_targets(env, action))  # no state carried between the calls
    env.step(action)
    np.testing.assert_allclose(label, action_from_env(env), atol=1e-4)


def test_dart_noise_moves_the_arm_off_the_expert_path_and_labels_the_expert_command():
    env = make_record_env("place")
    clean = record_episode(env, make_expert(env), seed=3)
    noisy = record_episode(env, make_expert(env), seed=3, noise=0.3)
    clean_states = np.stack([frame[STATE] for frame in clean.frames[:20]])
    noisy_states = np.stack([frame[STATE] for frame in noisy.frames[:20]])
    assert np.abs(noisy_states - clean_states).max() > 1.0  # degrees: the noise was executed
    labels = np.stack([frame[ACTION] for frame in noisy.frames])
    assert np.all(np.isfinite(labels)) and clean.success
    with pytest.raises(ValueError, match="noise = 1.5"):
        record_episode(env, make_expert(env), seed=3, noise=1.5)


def test_missed_grasp_closes_the_jaw_on_nothing_then_the_true_expert_retries():
    # A miss can knock the cube askew; the expert's retry then placed it in 33 of 40 measured (seed, side)
    # pairs, so this asserts most of a few episodes rather than one.
    placed = [_miss_then_retry(seed) for seed in (5, 6, 7)]
    assert sum(placed) >= 2, placed  # the true expert reopened, rose and placed the cube


def _miss_then_retry(seed: int) -> bool:
    env = make_record_env("place")
    obs, _ = env.reset(seed=seed)
    miss, steps = MissedGrasp(env, np.random.default_rng(0)), 0
    while (action := miss(obs)) is not None:
        obs, *_ = env.step(action)
        steps += 1
    assert miss.missed and steps < 40, steps  # the jaw closed past "holds nothing", before the detour's limit
    assert not env.unwrapped.task.grasp_terms(env.unwrapped.data)[1]
    expert, success = make_expert(env), False
    for _ in range(env.max_episode_steps - steps):
        obs, _, terminated, truncated, info = env.step(expert(obs))
        success |= bool(info["success"])
        if terminated or truncated:
            break
    return success


def test_recorded_misses_show_an_empty_jaw_closing_and_labels_from_the_true_expert():
    env = make_record_env("place")
    # Seed 7: on seed 5 this miss knocks the cube askew and the retry runs out of time (3 of seeds 5-13 do).
    clean = record_episode(env, make_expert(env), seed=7)
    missed = record_episode(env, make_expert(env), seed=7, misses=1.0)
    jaw = {name: np.stack([f[STATE] for f in episode.frames])[:, 5] for name, episode in
           (("clean", clean), ("missed", missed))}
    assert jaw["missed"].min() < jaw["clean"].min() - 5  # gripper 0-100: closed further, on nothing
    assert clean.success and missed.success
    with pytest.raises(ValueError, match="misses = 1.5"):
        record_episode(env, make_expert(env), seed=5, misses=1.5)
    reach = make_record_env("reach")
    with pytest.raises(ValueError, match="grasping task"):
        record_episode(reach, make_expert(reach), seed=5, misses=1.0)
