"""DrQ-v2 agent: config validation, acting, what each loss trains, the std schedule, checkpoint state,
deployment, and learning a synthetic image task."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tidyarm.rl.drqv2 import DrQV2, DrQV2Config
from tidyarm.rl.pixel_actor import PixelActor, PixelNetConfig, PixelPolicy
from tidyarm.sim.env import PROPRIO_SIZE

ACTION_DIM, SIZE = 2, 16
NET = PixelNetConfig(cameras=("wrist", "front"), image_size=SIZE, filters=8, feature_dim=16, hidden_dims=(32, 32))
SMALL = dict(batch_size=8, learning_starts=0)


# Learner tests run on one torch thread (see conftest.py): small updates, stable timing, no oversubscription.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _obs(rng: np.random.Generator, batch: int | None = None, net: PixelNetConfig = NET) -> dict:
    lead = () if batch is None else (batch,)
    obs = {camera: rng.integers(0, 256, (*lead, SIZE, SIZE, 3 * net.frame_stack), dtype=np.uint8)
           for camera in net.cameras}
    obs["proprio"] = rng.normal(size=(*lead, PROPRIO_SIZE)).astype(np.float32)
    return obs


def _batch(rng: np.random.Generator, batch_size: int = 8, demo: bool = False) -> dict:
    batch = {
        "obs": _obs(rng, batch_size), "next_obs": _obs(rng, batch_size),
        "action": rng.uniform(-1, 1, (batch_size, ACTION_DIM)).astype(np.float32),
        "reward": rng.normal(size=batch_size).astype(np.float32),
        "discount": np.full(batch_size, 0.99**3, np.float32),
        "terminated": rng.random(batch_size) < 0.2,
    }
    if demo:
        batch["demo"] = np.arange(batch_size) >= batch_size // 2
    return batch


def _agent(seed: int = 0, net: PixelNetConfig = NET, **overrides) -> DrQV2:
    torch.manual_seed(seed)
    return DrQV2(net, ACTION_DIM, DrQV2Config(**{**SMALL, **overrides}))


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [param.detach().clone() for param in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(old, new) for old, new in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize(("field", "value"), [
    ("lr", 0.0), ("gamma", 1.5), ("tau", 0.0), ("batch_size", 0), ("utd_ratio", 0), ("update_every", 0),
    ("n_step", 0), ("learning_starts", -1), ("std_start", -0.1), ("std_end", float("nan")),
    ("std_schedule_updates", 0), ("std_clip", -1.0), ("shift_pad", -1), ("bc_warmup_steps", -1),
    ("critic_warmup_steps", -1), ("offline_fraction", 2.0), ("bc_weight", -1.0),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DrQV2Config(**{field: value})


def test_act_shapes_bounds_noise_and_determinism():
    agent = _agent()
    obs = _obs(np.random.default_rng(0))
    greedy = agent.act(obs, eval_mode=True)
    assert greedy.shape == (ACTION_DIM,) and greedy.dtype == np.float32
    np.testing.assert_array_equal(greedy, agent.act(obs, eval_mode=True))
    noisy = np.stack([agent.act(obs, eval_mode=False) for _ in range(200)])
    assert noisy.dtype == np.float32 and np.all(np.abs(noisy) <= 1.0)
    # std 1.0 at the start, but the noise is clipped to +-std_clip around tanh(mean).
    assert 0.0 < np.abs(noisy - greedy).max() <= agent.config.std_clip + 1e-6


def test_act_takes_stacked_frames():
    net = PixelNetConfig(cameras=("front",), image_size=SIZE, filters=8, feature_dim=16, hidden_dims=(32, 32),
                         frame_stack=3)
    agent = _agent(net=net)
    assert agent.act(_obs(np.random.default_rng(0), net=net), eval_mode=True).shape == (ACTION_DIM,)
    with pytest.raises(ValueError, match=r"'front'.*\(16, 16, 3\).*\(16, 16, 9\)"):
        agent.act(_obs(np.random.default_rng(0)), eval_mode=True)  # single frames


def test_act_refuses_wrong_image_shape_or_dtype():
    agent = _agent()
    obs = _obs(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"'front'.*\(15, 16, 3\)"):
        agent.act({**obs, "front": obs["front"][1:]}, eval_mode=True)
    with pytest.raises(ValueError, match=r"'wrist'.*float32"):
        agent.act({**obs, "wrist": obs["wrist"].astype(np.float32)}, eval_mode=True)
    with pytest.raises(ValueError, match="'front'"):
        agent.act({key: value for key, value in obs.items() if key != "front"}, eval_mode=True)


def test_update_trains_encoder_through_the_critic_only(monkeypatch):
    agent = _agent(bc_weight=1.0)
    batch = _batch(np.random.default_rng(0), demo=True)
    encoder, critic, actor_head = _weights(agent.encoder), _weights(agent.critic), _weights(agent.actor.mlp)
    target = _weights(agent.critic_target)
    backward_passes = []  # one entry per backward pass that reaches the encoder's first conv weight
    agent.encoder.convs[0].weight.register_hook(lambda grad: backward_passes.append(grad))
    metrics = agent.update_many(lambda: batch, 1)
    assert {"critic_loss", "q_mean", "actor_loss", "std", "bc_loss"} <= set(metrics)
    assert all(np.isfinite(value) for value in metrics.values())
    assert _changed(encoder, agent.encoder) and _changed(critic, agent.critic)
    assert _changed(actor_head, agent.actor.mlp) and _changed(target, agent.critic_target)
    assert len(backward_passes) == 1  # the critic's; the actor loss (BC term included) stops at the features
    # With the critic's optimizer switched off, an update (actor step included) leaves the encoder alone.
    monkeypatch.setattr(agent.critic_optimizer, "step", lambda *args, **kwargs: None)
    encoder, actor_head = _weights(agent.encoder), _weights(agent.actor.mlp)
    agent.update_many(lambda: batch, 1)
    assert not _changed(encoder, agent.encoder) and _changed(actor_head, agent.actor.mlp)


def test_critic_only_updates_leave_the_actor():
    agent = _agent()
    actor, critic = _weights(agent.actor.mlp), _weights(agent.critic)
    rng = np.random.default_rng(0)
    agent.update_critic_only(lambda: _batch(rng), 2)
    assert not _changed(actor, agent.actor.mlp) and _changed(critic, agent.critic) and agent.num_updates == 0


def test_terminal_transitions_do_not_bootstrap():
    agent = _agent()
    batch = {**_batch(np.random.default_rng(0)), "terminated": np.ones(8, bool)}
    assert agent.update_many(lambda: batch, 1)["target_q_mean"] == pytest.approx(batch["reward"].mean(), abs=1e-6)


def test_exploration_std_follows_the_schedule():
    agent = _agent(std_start=1.0, std_end=0.2, std_schedule_updates=4)
    rng = np.random.default_rng(0)
    assert agent.exploration_std == pytest.approx(1.0)
    metrics = agent.update_many(lambda: _batch(rng), 2)  # updates at std 1.0 and 0.8
    assert metrics["std"] == pytest.approx(0.9) and agent.num_updates == 2
    assert agent.exploration_std == pytest.approx(0.6)
    agent.update_many(lambda: _batch(rng), 3)
    assert agent.exploration_std == pytest.approx(0.2)  # stays at std_end after the schedule


def test_state_dict_round_trip_resumes_identically(tmp_path):
    rng = np.random.default_rng(0)
    agent = _agent(seed=0)
    agent.update_many(lambda: _batch(rng), 3)
    save_file(agent.state_dict(), tmp_path / "agent.safetensors")
    resumed = _agent(seed=1)
    resumed.load_state_dict(load_file(tmp_path / "agent.safetensors"))
    assert resumed.num_updates == 3
    batch = _batch(rng)
    results = []
    for learner in (agent, resumed):
        torch.manual_seed(7)
        results.append((learner.update_many(lambda: batch, 2), _weights(learner.actor), _weights(learner.critic)))
    assert results[0][0] == results[1][0]
    for first, second in zip(results[0][1] + results[0][2], results[1][1] + results[1][2], strict=True):
        torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_mismatched_state_dict_names_the_field():
    agent = _agent()
    state = agent.state_dict()
    with pytest.raises(ValueError, match="num_updates"):
        agent.load_state_dict({key: value for key, value in state.items() if key != "num_updates"})
    wider = _agent(net=PixelNetConfig(cameras=NET.cameras, image_size=SIZE, filters=8, feature_dim=24,
                                      hidden_dims=(32, 32)))
    with pytest.raises(ValueError, match=r"actor\.trunk\.0\.weight"):
        agent.load_state_dict(wider.state_dict())


def test_pixel_policy_reproduces_eval_actions():
    agent = _agent()
    rng = np.random.default_rng(0)
    agent.fit_obs_normalizer(rng.normal(2.0, 3.0, (100, PROPRIO_SIZE)).astype(np.float32), None)
    agent.update_many(lambda: _batch(rng), 2)
    actor = PixelActor(NET, ACTION_DIM, stochastic=False)
    actor.load_state_dict(agent.policy_state_dict())
    policy = PixelPolicy(actor)
    for _ in range(3):
        obs = _obs(rng)
        np.testing.assert_allclose(policy(obs), agent.act(obs, eval_mode=True), atol=1e-6)


def test_behavior_clone_fits_demo_actions_and_trains_the_encoder():
    agent = _agent(lr=1e-3)
    rng = np.random.default_rng(0)
    obs = _obs(rng, 32)
    actions = rng.uniform(-0.8, 0.8, (32, ACTION_DIM)).astype(np.float32)
    encoder = _weights(agent.encoder)
    first = agent.behavior_clone(obs, actions, steps=1, batch_size=16, rng=rng)
    last = agent.behavior_clone(obs, actions, steps=150, batch_size=16, rng=rng)
    assert last < 0.5 * first and _changed(encoder, agent.encoder)


# ------------------------------------------------------------------------------------------------ learning


def _square_task(rng: np.random.Generator, count: int) -> tuple[dict, np.ndarray]:
    """Images with a bright 3x3 square whose column sets the rewarded action: -1 at the left edge, +1 at the right."""
    columns = rng.integers(0, SIZE - 2, count)
    images = np.zeros((count, SIZE, SIZE, 3), np.uint8)
    rows = rng.integers(0, SIZE - 2, count)
    for index, (row, column) in enumerate(zip(rows, columns, strict=True)):
        images[index, row:row + 3, column:column + 3] = 255
    obs = {"front": images, "proprio": np.zeros((count, PROPRIO_SIZE), np.float32)}
    return obs, (2.0 * columns / (SIZE - 3) - 1.0).astype(np.float32)[:, None]


def _mean_reward(agent: DrQV2, obs: dict, targets: np.ndarray) -> float:
    actions = np.stack([agent.act({key: value[i] for key, value in obs.items()}, eval_mode=True)
                        for i in range(len(targets))])
    return float(-np.abs(actions - targets).mean())


def test_learns_where_the_square_is():
    """Single-step episodes, reward -|action - target(image)|: the critic must read the image (the encoder
    learns through it) and the actor must climb the critic's action gradient."""
    net = PixelNetConfig(cameras=("front",), image_size=SIZE, filters=8, feature_dim=16, hidden_dims=(64, 64))
    torch.manual_seed(0)
    agent = DrQV2(net, 1, DrQV2Config(lr=1e-3, batch_size=64, learning_starts=0, std_schedule_updates=300))
    rng = np.random.default_rng(0)
    obs, targets = _square_task(rng, 512)
    actions = rng.uniform(-1, 1, (512, 1)).astype(np.float32)
    replay = {"obs": obs, "next_obs": obs, "action": actions, "reward": -np.abs(actions - targets)[:, 0],
              "discount": np.full(512, 0.99, np.float32), "terminated": np.ones(512, bool)}

    def sample() -> dict:
        index = rng.integers(0, 512, 64)
        return {key: {k: v[index] for k, v in value.items()} if isinstance(value, dict) else value[index]
                for key, value in replay.items()}

    test_obs, test_targets = _square_task(np.random.default_rng(1), 64)
    initial = _mean_reward(agent, test_obs, test_targets)
    agent.update_many(sample, 300)
    final = _mean_reward(agent, test_obs, test_targets)
    assert final > initial + 0.25, (initial, final)  # about -0.57 -> -0.06 over seeds 0..5
