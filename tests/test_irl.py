"""Inverse RL: projection math, the discriminator, reward relabelling and one short end-to-end run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tidyarm.eval import PolicySpec, evaluate
from tidyarm.il.adversarial import GAILConfig, GAILReward
from tidyarm.il.apprenticeship import projection_step, unit_weights
from tidyarm.il.irl_reward import LearnedRewardWrapper, StateFeatures
from tidyarm.il.irl_train import IRL_SAC, IRLConfig, run_irl
from tidyarm.rl.demos import collect_demos
from tidyarm.rl.train import TrainConfig, Trainer
from tidyarm.sim.env import EnvConfig


def test_projection_step_matches_the_hand_computed_answer():
    expert = np.array([1.0, 1.0])
    # Projecting (1, 1) onto the line through (0, 0) and (1, 0) lands on (1, 0): margin 1.
    mu_bar, margin = projection_step(expert, np.zeros(2), np.array([1.0, 0.0]))
    np.testing.assert_allclose(mu_bar, [1.0, 0.0])
    assert margin == pytest.approx(1.0)
    np.testing.assert_allclose(unit_weights(expert, mu_bar), [0.0, 1.0])
    # A second policy at (0, 1): the segment's closest point to (1, 1) is its midpoint.
    mu_bar, margin = projection_step(expert, mu_bar, np.array([0.0, 1.0]))
    np.testing.assert_allclose(mu_bar, [0.5, 0.5])
    assert margin == pytest.approx(np.sqrt(0.5))
    # A policy that repeats mu_bar changes nothing.
    same, margin_again = projection_step(expert, mu_bar, mu_bar.copy())
    np.testing.assert_allclose(same, mu_bar)
    assert margin_again == pytest.approx(margin)


def test_features_live_in_the_unit_box_and_see_the_target():
    env = EnvConfig(task="reach").make()
    features = StateFeatures(env)
    obs, _ = env.reset(seed=0)
    phi = features(obs)
    assert phi.shape == (2,) and np.all((phi >= 0) & (phi <= 1))
    at_target = obs.copy()
    at_target[env.state_layout["target_to_tool"]] = 0.0
    np.testing.assert_allclose(features(at_target), [1.0, 1.0])
    lift = EnvConfig(task="lift").make()
    obs, _ = lift.reset(seed=0)
    assert StateFeatures(lift)(obs).shape == (3,)
    with pytest.raises(ValueError, match="place"):
        StateFeatures(EnvConfig(task="place").make())


def test_wrapper_replaces_the_reward_and_keeps_the_true_one():
    env, twin = EnvConfig(task="reach").make(), EnvConfig(task="reach").make()
    features = StateFeatures(env)
    weights = np.array([0.3, 0.7], dtype=np.float32)
    wrapped = LearnedRewardWrapper(env, lambda obs, action, next_obs: features(next_obs) @ weights)
    obs, _ = wrapped.reset(seed=3)
    twin.reset(seed=3)
    for _ in range(5):
        action = wrapped.action_space.sample()
        obs, reward, *_, info = wrapped.step(action)
        _, true_reward, *_ = twin.step(action)
        assert reward == pytest.approx(float(features(obs) @ weights), abs=1e-6)
        assert info["true_reward"] == pytest.approx(true_reward)


class _ConstantReward:
    finished = False

    def __call__(self, obs, action, next_obs):
        return np.full(len(obs), 7.0, dtype=np.float32)

    def update(self, trainer):
        return {}


def test_trainer_relabels_online_and_demo_rows(tmp_path, one_torch_thread):
    config = TrainConfig(task="reach", total_steps=50, demos=1, run_dir=tmp_path, threads=1, sac=IRL_SAC)
    trainer = Trainer(config, reward_model=_ConstantReward())
    env = config.make_env()
    obs, _ = env.reset(seed=0)
    next_obs, reward, *_ = env.step(env.action_space.sample())
    trainer.online.add(obs, env.action_space.sample(), reward, next_obs, IRL_SAC.gamma, False)
    batch = trainer._sample()
    assert batch["demo"].any() and (~batch["demo"]).any()
    np.testing.assert_array_equal(batch["reward"], 7.0)
    with pytest.raises(ValueError, match="n_step"):
        Trainer(dataclasses.replace(config, sac=dataclasses.replace(IRL_SAC, n_step=3)),
                reward_model=_ConstantReward())


@pytest.mark.parametrize("inputs", ["state_action", "next_state"])
def test_discriminator_separates_expert_from_random_transitions(inputs, one_torch_thread):
    env_config = EnvConfig(task="reach")
    expert = collect_demos(env_config, 3, seed=0, rl=IRL_SAC)
    env = env_config.make()
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    random = {"obs": [], "action": [], "next_obs": []}
    for _ in range(150):
        action = env.action_space.sample()
        next_obs, *_ = env.step(action)
        for key, value in (("obs", obs), ("action", action), ("next_obs", next_obs)):
            random[key].append(value)
        obs = next_obs
    random = {key: np.array(value) for key, value in random.items()}
    model = GAILReward(GAILConfig(inputs=inputs, hidden_dims=(64, 64), lr=1e-3), obs.shape[0], 5, learning_starts=0,
                       seed=0)
    model.discriminator.fit_normalizer(expert.observations())
    rng = np.random.default_rng(0)
    for _ in range(150):
        metrics = model.train_on(expert.sample(64, rng), {key: value[rng.integers(0, 150, 64)]
                                                          for key, value in random.items()})
    assert metrics["disc_accuracy"] > 0.9
    demos = expert.sample(len(expert), rng)
    expert_reward = model(demos["obs"], demos["action"], demos["next_obs"]).mean()
    random_reward = model(random["obs"], random["action"], random["next_obs"]).mean()
    assert expert_reward > random_reward + 1.0


def test_short_apprenticeship_run_beats_its_random_start(tmp_path, one_torch_thread):
    # No behaviour cloning: whatever beats the random start comes from the learned reward.
    sac = dataclasses.replace(IRL_SAC, learning_starts=300, bc_warmup_steps=0, bc_weight=0.0, critic_warmup_steps=0,
                              hidden_dims=(64, 64), utd_ratio=1, actor_lr=1e-3, critic_lr=1e-3)
    config = IRLConfig(method="apprenticeship", task="reach", total_steps=1500, demos=3, eval_every=10_000,
                       eval_episodes=1, final_episodes=5, run_dir=tmp_path, sac=sac)
    config = dataclasses.replace(config, apprenticeship=dataclasses.replace(config.apprenticeship, iterations=2,
                                                                           rollout_episodes=2))
    summary = run_irl(config)
    random = evaluate(PolicySpec("random"), 5, task="reach")
    assert summary["imitation_return"] > random["mean_return"] + 5.0
    assert (tmp_path / "policy.json").is_file() and (tmp_path / "irl_summary.json").is_file()


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="method 'bc'"):
        IRLConfig(method="bc")
    with pytest.raises(ValueError, match="task 'place'"):
        IRLConfig(task="place")
    with pytest.raises(ValueError, match="n_step = 3"):
        IRLConfig(sac=dataclasses.replace(IRL_SAC, n_step=3))
    with pytest.raises(ValueError, match="inputs = 'pixels'"):
        GAILConfig(inputs="pixels")
    with pytest.raises(ValueError, match="reward = 'log'"):
        GAILConfig(reward="log")


def test_logit_reward_is_signed_and_softplus_is_not():
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    action = np.zeros((32, 2), dtype=np.float32)
    rewards = {}
    for form in ("softplus", "logit"):
        torch.manual_seed(0)  # the same discriminator weights for both forms
        rewards[form] = GAILReward(GAILConfig(reward=form, hidden_dims=(8,)), 4, 2, 0, 0)(obs, action, obs)
    assert (rewards["softplus"] > 0).all() and (rewards["logit"] < 0).any()
    np.testing.assert_allclose(rewards["softplus"], np.logaddexp(0.0, rewards["logit"]), rtol=1e-5)
