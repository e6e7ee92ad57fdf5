"""The pixel routes end to end on tiny budgets: train --algo vsac|drqv2 --obs pixels, distill, eval, resume,
and refusing checkpoints for another task or observation mode."""

import json

import numpy as np
import pytest

from tidyarm.eval import evaluate, resolve_policy
from tidyarm.rl.checkpoint import find_checkpoint
from tidyarm.rl.distill import DistillConfig, Distiller, distill, load_teacher, resume_distill
from tidyarm.rl.drqv2 import DrQV2Config
from tidyarm.rl.logger import read_metrics
from tidyarm.rl.pixel_actor import PixelNetConfig
from tidyarm.rl.policy_io import load_policy
from tidyarm.rl.train import TrainConfig, resume, train
from tidyarm.rl.vsac import VisualSACConfig
from tidyarm.sim.env import EnvConfig

TINY_NET = PixelNetConfig(image_size=16, supersample=1, filters=8, feature_dim=16, hidden_dims=(32, 32))
TINY_RL = dict(batch_size=16, learning_starts=40, bc_warmup_steps=5, critic_warmup_steps=5)


# Learner tests run on one torch thread (see conftest.py): small updates, stable timing, no oversubscription.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_train(run_dir, algo: str, **overrides) -> TrainConfig:
    values = dict(task="reach", algo=algo, obs="pixels", total_steps=100, eval_every=50, eval_episodes=1,
                  checkpoint_every=50, log_every=25, demos=1, run_dir=run_dir, threads=1, pixels=TINY_NET,
                  vsac=VisualSACConfig(**TINY_RL), drqv2=DrQV2Config(**TINY_RL))
    return TrainConfig(**{**values, **overrides})


@pytest.mark.parametrize(("algo", "frame_stack"), [("vsac", 1), ("drqv2", 2)])
def test_pixel_training_writes_a_deployable_image_policy(tmp_path, algo, frame_stack):
    net = PixelNetConfig(**{**TINY_NET.to_dict(), "cameras": ("wrist", "front"), "hidden_dims": (32, 32),
                            "frame_stack": frame_stack})
    run_dir = train(tiny_train(tmp_path / "run", algo, pixels=net))
    series = read_metrics(run_dir / "metrics.csv")
    assert [step for step, _ in series["eval/success_rate"]] == [50, 100]
    assert "train/critic_loss" in series
    meta = json.loads((run_dir / "policy.json").read_text())
    assert (meta["kind"], meta["algo"], meta["env"]["obs_mode"]) == ("pixels", algo, "pixels")
    summary = evaluate(resolve_policy(str(run_dir)), episodes=1, video_episodes=0)  # stacks its own frames
    assert summary["episodes"] == 1 and summary["mean_length"] == 50


def test_pixel_run_resumes_at_its_step_with_replay(tmp_path):
    run_dir = train(tiny_train(tmp_path / "run", "vsac"))
    resume(run_dir, total_steps=150)
    meta = json.loads((find_checkpoint(run_dir) / "meta.json").read_text())
    assert meta["step"] == 150 and meta["obs_shapes"]["wrist"] == [16, 16, 3]


def test_parallel_envs_store_unmixed_transitions_that_end_at_the_final_observation(tmp_path):
    # Two worker processes, 1-step returns: round r stores env 0's transition in slot 2r, env 1's in 2r + 1.
    # Within one env each next observation is the following transition's observation, except where an
    # episode ended (reach: 50 steps): there the chain must break, the stored next observation being the
    # episode's last one rather than the next episode's first.
    config = tiny_train(tmp_path / "run", "vsac", total_steps=101, num_envs=2,
                        vsac=VisualSACConfig(**TINY_RL, n_step=1))
    run_dir = train(config)
    assert json.loads((find_checkpoint(run_dir) / "meta.json").read_text())["step"] == 101
    assert [step for step, _ in read_metrics(run_dir / "metrics.csv")["eval/success_rate"]] == [50, 100, 101]
    replay = np.load(find_checkpoint(run_dir) / "online.npz")
    assert int(replay["size"]) == 102  # 51 rounds of 2 (the last round runs one step past total_steps)
    for env in (0, 1):
        obs, next_obs = replay["obs/wrist"][env:102:2], replay["next_obs/wrist"][env:102:2]
        breaks = [i for i in range(len(obs) - 1) if not np.array_equal(next_obs[i], obs[i + 1])]
        assert breaks == [49], f"env {env}"


def test_pixel_algo_needs_pixel_observations():
    with pytest.raises(ValueError, match="obs 'state'.*vsac.*--obs pixels"):
        TrainConfig(algo="vsac")
    with pytest.raises(ValueError, match="algo 'ppo'"):
        TrainConfig(algo="ppo", obs="pixels")


def tiny_distill(run_dir, **overrides) -> DistillConfig:
    values = dict(teacher="pretrained:reach", student="actor", net=TINY_NET, iterations=2, episodes_per_iteration=1,
                  beta_decay=0.5, fit_steps=30, reset_frames=0, batch_size=16, eval_episodes=1, num_envs=1,
                  run_dir=run_dir, threads=1)
    return DistillConfig(**{**values, **overrides})


def test_distill_labels_student_rollouts_and_exports_a_pixel_policy(tmp_path):
    run_dir = distill(tiny_distill(tmp_path / "run"))
    series = read_metrics(run_dir / "metrics.csv")
    assert [beta for _, beta in series["train/beta"]] == [1.0, 0.5]  # round 0 teacher-only, then mixed
    assert [step for step, _ in series["eval/success_rate"]] == [50, 100]  # labelled observations so far
    loaded = load_policy(run_dir)
    assert loaded.kind == "pixels" and loaded.env_config.obs_mode == "pixels"
    summary = evaluate(resolve_policy(str(run_dir)), episodes=1, video_episodes=0)
    assert summary["task"] == "reach"


def test_distill_resumes_with_its_dataset(tmp_path):
    run_dir = distill(tiny_distill(tmp_path / "run", iterations=1))
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "iterations": 2}))
    resume_distill(run_dir)
    assert json.loads((find_checkpoint(run_dir) / "meta.json").read_text())["iteration"] == 2
    assert np.load(find_checkpoint(run_dir) / "dataset.npz")["action"].shape[0] == 100


def test_first_frames_add_one_labelled_scene_each_at_the_arm_s_start(tmp_path):
    distiller = Distiller(tiny_distill(tmp_path / "run", iterations=1, reset_frames=3))
    distiller.run()
    assert distiller.data.size == distiller.max_steps + 3  # one 50-step episode, then three first frames
    first_frames = slice(distiller.max_steps, distiller.max_steps + 3)
    states = distiller.data.arrays("state")[first_frames]
    env = EnvConfig(task="reach").make()
    target_part = env.state_layout["target_pos"]
    env.close()
    targets = np.concatenate([distiller.data.arrays("state")[:1], states])[:, target_part]
    assert len({tuple(row) for row in targets.round(6)}) == 4  # each a scene the episode did not show
    np.testing.assert_allclose(distiller.data.arrays("action")[first_frames], distiller.teacher(states), atol=1e-6)


def test_teacher_must_be_a_saved_state_policy(tmp_path):
    with pytest.raises(ValueError, match="built-in policy"):
        load_teacher("expert")
    student = distill(tiny_distill(tmp_path / "student", iterations=1))
    with pytest.raises(ValueError, match="observation mode 'pixels'"):
        load_teacher(str(student))


def test_checkpoint_for_another_task_or_observation_mode_is_refused(tmp_path):
    student = distill(tiny_distill(tmp_path / "student", iterations=1))
    with pytest.raises(ValueError, match="trained on task 'reach', not 'lift'"):
        evaluate(resolve_policy(str(student)), episodes=1, task="lift")
    other_net = PixelNetConfig(**{**TINY_NET.to_dict(), "cameras": ("front",), "hidden_dims": (32, 32)})
    with pytest.raises(ValueError, match="field 'net'"):
        Distiller(tiny_distill(student, net=other_net), resume=True)
    from tidyarm.rl.policy_io import check_policy_fits_env

    state_env = resolve_policy("pretrained:reach").loaded.env_config.make()
    with pytest.raises(ValueError, match="'wrist' images of shape"):
        check_policy_fits_env(load_policy(student), state_env, str(student))
