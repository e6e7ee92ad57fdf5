"""Vector envs: batched pixel observations from worker processes, determinism, autoreset, validation, cleanup."""

import multiprocessing
import os

import numpy as np
import pytest

from tidyarm.sim.env import EnvConfig
from tidyarm.sim.vector import make_vector_env

CONFIG = EnvConfig(task="lift", obs_mode="pixels", image_size=16)  # randomization on (the default)
EPISODE_STEPS = 3  # short episodes, so a few steps cross an autoreset
SEEDS = [11, 12]


@pytest.fixture(scope="module")
def pixel_vec():
    """Two worker processes, shared by the tests below (each resets with its own seeds)."""
    env = make_vector_env(CONFIG, num_envs=2, env_overrides={"max_episode_steps": EPISODE_STEPS})
    yield env
    env.close()


def _actions(env, steps: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    space = env.single_action_space
    return rng.uniform(space.low, space.high, size=(steps, env.num_envs, *space.shape)).astype(np.float32)


def _assert_same_observation(vector_obs: dict, single_obs: dict) -> None:
    assert set(vector_obs) == set(single_obs)
    for key, value in single_obs.items():
        np.testing.assert_array_equal(vector_obs[key], value, err_msg=key)


def test_async_pixel_env_batches_uint8_images_and_proprio(pixel_vec):
    obs, _ = pixel_vec.reset(seed=SEEDS)
    obs, *_ = pixel_vec.step(_actions(pixel_vec, 1)[0])
    for camera in CONFIG.cameras:
        assert obs[camera].dtype == np.uint8 and obs[camera].shape == (2, 16, 16, 3)
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (2, 21)
    assert not np.array_equal(obs["front"][0], obs["front"][1])  # two seeds, two randomized scenes


def test_workers_match_single_envs_through_an_autoreset(pixel_vec):
    """Same seeds and actions give the same observations, rewards and episode ends as single envs in this
    process, including the automatic reset that continues each worker's own random stream."""
    actions = _actions(pixel_vec, 2 * EPISODE_STEPS + 1)
    first_obs, _ = pixel_vec.reset(seed=SEEDS)
    steps = [pixel_vec.step(batch) for batch in actions]
    for index, seed in enumerate(SEEDS):
        single = CONFIG.make(max_episode_steps=EPISODE_STEPS)
        single_obs, _ = single.reset(seed=seed)
        _assert_same_observation(_env_slice(first_obs, index), single_obs)
        for batch, (obs, reward, terminated, truncated, info) in zip(actions, steps, strict=True):
            single_obs, single_reward, single_terminated, single_truncated, _ = single.step(batch[index])
            assert reward[index] == pytest.approx(single_reward)
            assert (terminated[index], truncated[index]) == (single_terminated, single_truncated)
            if single_terminated or single_truncated:
                _assert_same_observation(info["final_obs"][index], single_obs)
                single_obs, _ = single.reset()
            _assert_same_observation(_env_slice(obs, index), single_obs)
        single.close()


def _env_slice(batched_obs: dict, index: int) -> dict:
    return {key: value[index] for key, value in batched_obs.items()}


def test_episode_end_keeps_the_true_final_observation(pixel_vec):
    """SAME_STEP autoreset: the step that ends an episode returns the next episode's first observation and
    the ended episode's last one in info["final_obs"]; no step's (obs, next_obs) spans two episodes."""
    obs, _ = pixel_vec.reset(seed=SEEDS)
    for step, action in enumerate(_actions(pixel_vec, EPISODE_STEPS), start=1):
        next_obs, reward, terminated, truncated, info = pixel_vec.step(action)
        done = terminated | truncated
        if step < EPISODE_STEPS:
            assert not done.any() and "final_obs" not in info
            assert pixel_vec.get_attr("elapsed_steps") == (step, step)
        else:
            assert truncated.all()
            assert pixel_vec.get_attr("elapsed_steps") == (0, 0)  # next_obs already starts a new episode
            for index in range(2):
                final = info["final_obs"][index]
                assert final["front"].shape == (16, 16, 3) and final["front"].dtype == np.uint8
                assert not np.array_equal(final["proprio"], next_obs["proprio"][index])
            assert info["_final_obs"].all() and "success" in info["final_info"]
        obs = next_obs
    assert obs["front"].shape == (2, 16, 16, 3)


def test_workers_render_headless_when_the_caller_set_no_gl_backend(monkeypatch):
    """A worker imports MuJoCo before any of our code runs in it, so it must start with MUJOCO_GL=egl;
    this process's environment is left as it was."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    env = make_vector_env(CONFIG, num_envs=1)
    obs, _ = env.reset(seed=0)
    env.close()
    assert obs["front"].std() > 1.0  # a rendered picture
    assert "MUJOCO_GL" not in os.environ


@pytest.mark.parametrize("num_envs", [0, 65, 2.5, True, "4"])
def test_bad_num_envs_names_the_value(num_envs):
    with pytest.raises(ValueError, match=rf"num_envs = {num_envs!r}.*1 \.\. 64"):
        make_vector_env(CONFIG, num_envs)


def test_frame_stack_needs_images():
    with pytest.raises(ValueError, match="frame_stack = 3 with obs_mode 'state'"):
        make_vector_env(EnvConfig(obs_mode="state"), 2, frame_stack=3)


def test_sync_env_stacks_frames():
    env = make_vector_env(CONFIG, 2, asynchronous=False, frame_stack=3)
    obs, _ = env.reset(seed=SEEDS)
    assert obs["wrist"].shape == (2, 16, 16, 9) and obs["proprio"].shape == (2, 21)
    env.close()


def test_close_leaves_no_worker_alive():
    env = make_vector_env(EnvConfig(obs_mode="state"), num_envs=2)
    env.reset(seed=0)
    workers = list(env.processes)
    assert all(worker.is_alive() for worker in workers)
    env.close()
    assert not any(worker.is_alive() for worker in workers)
    assert all(worker.exitcode is not None for worker in workers)  # joined and reaped, not zombies
    assert not set(multiprocessing.active_children()) & set(workers)
