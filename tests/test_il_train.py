"""`train-il` end to end on tiny budgets: run outputs, `tidyarm eval` of the run, resume, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from tidyarm.eval import evaluate, resolve_policy
from tidyarm.il.bc import BCConfig
from tidyarm.il.config import TrainILConfig
from tidyarm.il.diffusion import DiffusionConfig
from tidyarm.il.train import ILTrainer, resume_il, train_il
from tidyarm.rl.checkpoint import find_checkpoint
from tidyarm.rl.logger import read_metrics
from tidyarm.rl.policy_io import load_policy

TINY_BC = BCConfig(hidden_dims=(32, 32))


def tiny(run_dir, **overrides) -> TrainILConfig:
    values = dict(policy="bc", dataset="expert:reach:2", steps=40, batch_size=16, lr=1e-3, warmup_steps=5,
                  eval_episodes=1, checkpoint_every=20, log_every=10, run_dir=run_dir, bc=TINY_BC)
    return TrainILConfig(**{**values, **overrides})


def test_train_il_writes_a_policy_that_tidyarm_eval_runs(tmp_path, one_torch_thread):
    run_dir = train_il(tiny(tmp_path / "run"))
    for name in ("config.json", "metrics.csv", "policy.safetensors", "policy.json"):
        assert (run_dir / name).is_file(), name
    series = read_metrics(run_dir / "metrics.csv")
    assert [step for step, _ in series["train/loss"]] == [10, 20, 30, 40]
    assert [step for step, _ in series["eval/success_rate"]] == [40]
    meta = json.loads((run_dir / "policy.json").read_text())
    assert (meta["kind"], meta["algo"], meta["env"]["action_mode"]) == ("il", "bc", "joint")
    assert set(meta["il"]["stats"]) == {"observation.state", "observation.environment_state", "action"}
    assert meta["il"]["relative_actions"] is True
    summary = evaluate(resolve_policy(str(run_dir)), episodes=2, out_dir=None)
    assert summary["task"] == "reach" and summary["episodes"] == 2


def test_training_reduces_the_loss(tmp_path, one_torch_thread):
    run_dir = train_il(tiny(tmp_path / "run", steps=300, log_every=50, checkpoint_every=300, batch_size=32,
                            bc=BCConfig(hidden_dims=(64, 64))))
    losses = [value for _, value in read_metrics(run_dir / "metrics.csv")["train/loss"]]
    assert losses[-1] < 0.6 * losses[0]


def test_resume_continues_from_the_checkpoint(tmp_path, one_torch_thread):
    config = tiny(tmp_path / "run", steps=20, policy="diffusion",
                  diffusion=DiffusionConfig(horizon=8, n_action_steps=4, denoiser="unet", down_dims=(16, 32),
                                            groups=4, step_embed_dim=16, inference_steps=2))
    run_dir = train_il(config)
    resume_il(run_dir, steps=40)
    meta = json.loads((find_checkpoint(run_dir) / "meta.json").read_text())
    assert meta["step"] == 40 and meta["ema_updates"] == 40
    steps = [step for step, _ in read_metrics(run_dir / "metrics.csv")["train/loss"]]
    assert steps == [10, 20, 30, 40]
    assert load_policy(run_dir).meta["step"] == 40


def test_image_inputs_record_cameras_and_evaluate(tmp_path, one_torch_thread):
    config = tiny(tmp_path / "run", steps=4, dataset="expert:reach:1", image_size=16,
                  inputs=("observation.state", "observation.images.front"))
    run_dir = train_il(config)
    env_config = load_policy(run_dir).env_config
    assert (env_config.obs_mode, env_config.image_size, env_config.cameras) == ("state+pixels", 16, ("front",))
    assert evaluate(resolve_policy(str(run_dir)), episodes=1)["episodes"] == 1


def test_default_learning_rate_follows_the_policy_and_the_denoiser():
    assert TrainILConfig(policy="act").peak_lr == 2e-4
    assert TrainILConfig(policy="diffusion").peak_lr == 2e-4  # the transformer denoiser
    assert TrainILConfig(policy="diffusion", diffusion=DiffusionConfig(denoiser="unet")).peak_lr == 3e-4
    assert TrainILConfig(policy="diffusion", lr=5e-4).peak_lr == 5e-4


def test_bad_configs_and_datasets_are_named(tmp_path):
    with pytest.raises(ValueError, match="policy 'gail'"):
        tiny(tmp_path, policy="gail")
    with pytest.raises(ValueError, match="expert:<task>:<episodes>"):
        ILTrainer(tiny(tmp_path, dataset="expert:stack:3"))
    with pytest.raises(ValueError, match="camera .side."):
        ILTrainer(tiny(tmp_path, inputs=("observation.state", "observation.images.side")))
    with pytest.raises(ValueError, match="episodes = 5 but expert:reach:2 holds 2"):
        ILTrainer(tiny(tmp_path, episodes=5))


def test_eval_refuses_an_env_that_does_not_fit(tmp_path, one_torch_thread):
    run_dir = train_il(tiny(tmp_path / "run", steps=2))
    loaded = load_policy(run_dir)
    env = loaded.env_config.make()
    from tidyarm.rl.policy_io import check_policy_fits_env

    check_policy_fits_env(loaded, env, "run")
    loaded.reset()
    observation, _ = env.reset(seed=0)
    assert np.all(np.abs(loaded(observation)) <= 1.0)
    with pytest.raises(ValueError, match="action_mode 'ee', expected 'joint'"):
        check_policy_fits_env(loaded, type(loaded.env_config)(task="reach").make(), "run")


def test_trains_on_a_lerobot_dataset_on_disk(tmp_path, one_torch_thread):
    """The fixture was written by LeRobot's own writer: state, action and a 64-px front camera, two tasks."""
    fixture = Path(__file__).parent / "data" / "lerobot_v3_fixture"
    config = tiny(tmp_path / "run", dataset=str(fixture), steps=3, task="place", eval_episodes=0,
                  inputs=("observation.state", "observation.images.front"))
    run_dir = train_il(config)
    loaded = load_policy(run_dir)
    assert loaded.meta["dataset"] == str(fixture) and loaded.env_config.cameras == ("front",)
    assert loaded.env_config.task == "place"
    with pytest.raises(ValueError, match="cannot tell the sim task"):
        ILTrainer(tiny(tmp_path / "other", dataset=str(fixture), inputs=("observation.state",)))
