"""Imitation policies on synthetic tensors: chunks, normalization, each policy learns, acting checks its inputs."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from tidyarm.il.act import ACTConfig
from tidyarm.il.bc import BCConfig
from tidyarm.il.chunks import ChunkSampler
from tidyarm.il.ddim import NoiseSchedule
from tidyarm.il.diffusion import DiffusionConfig
from tidyarm.il.features import InputSpec
from tidyarm.il.normalize import Normalizer, compute_stats
from tidyarm.il.registry import make_il_policy, policy_from_description
from tidyarm.il.transformer_denoiser import TransformerDenoiser

STATE, ENV, FRONT = "observation.state", "observation.environment_state", "observation.images.front"
TINY = {"bc": BCConfig(hidden_dims=(64, 64), dropout=0.0),
        "act": ACTConfig(chunk_size=4, d_model=32, n_heads=4, ff_dim=64, encoder_layers=1, vae_layers=1,
                         latent_dim=4, kl_weight=1.0, dropout=0.0),
        "diffusion": DiffusionConfig(horizon=8, n_action_steps=4, denoiser="unet", down_dims=(16, 32), groups=4,
                                     step_embed_dim=16, inference_steps=5),
        "diffusion-transformer": DiffusionConfig(horizon=8, n_action_steps=4, denoiser="transformer",
                                                 transformer_width=32, transformer_layers=1, transformer_dropout=0.0,
                                                 inference_steps=5)}
TINY["diffusion-transformer-cond"] = replace(TINY["diffusion-transformer"], transformer_cond_layers=1)
TINY["diffusion-transformer-causal"] = replace(TINY["diffusion-transformer"], transformer_causal=True)


def synthetic(frames_per_episode=(30, 40, 30), image_size=16, seed=0):
    """Episodes whose action is a fixed linear function of the state: easy to learn from the current frame."""
    rng = np.random.default_rng(seed)
    total = sum(frames_per_episode)
    edges = np.cumsum([0, *frames_per_episode])
    frames = {STATE: rng.normal(0, 30, (total, 6)).astype(np.float32),
              ENV: rng.normal(0, 0.1, (total, 4)).astype(np.float32),
              FRONT: rng.integers(0, 256, (total, image_size, image_size, 3), dtype=np.uint8)}
    frames["action"] = (0.5 * frames[STATE] + 10.0).astype(np.float32)
    features = {STATE: {"dtype": "float32", "shape": [6]}, ENV: {"dtype": "float32", "shape": [4]},
                FRONT: {"dtype": "video", "shape": [image_size, image_size, 3]},
                "action": {"dtype": "float32", "shape": [6]}}
    return frames, features, list(zip(edges[:-1], edges[1:], strict=True))


def build(name, inputs=(STATE, ENV), config=None):
    """A policy of kind `name` (or a variant named "kind-...") on the synthetic episodes, and their sampler."""
    kind = name.split("-")[0]
    frames, features, bounds = synthetic()
    spec = InputSpec.from_features(features, inputs)
    stats = {name: compute_stats(frames[name]) for name in (STATE, ENV, "action")}
    policy = make_il_policy(kind, config or TINY[name], spec, stats)
    sampler = ChunkSampler(frames, bounds, spec.names, policy.n_obs_steps, policy.horizon, policy.action_offset)
    return policy, sampler, frames


def test_chunks_repeat_edge_frames_and_flag_padding():
    frames = {STATE: np.arange(10, dtype=np.float32)[:, None], "action": np.arange(10, dtype=np.float32)[:, None]}
    sampler = ChunkSampler(frames, [(0, 4), (4, 10)], (STATE,), n_obs_steps=2, horizon=4, action_offset=-1)
    batch = sampler.gather(np.array([0, 3, 4]))  # first frame of ep 0, last frame of ep 0, first of ep 1
    assert batch[STATE][:, :, 0].tolist() == [[0, 0], [2, 3], [4, 4]]
    assert batch["action"][:, :, 0].tolist() == [[0, 0, 1, 2], [2, 3, 3, 3], [4, 4, 5, 6]]
    assert batch["action_is_pad"].tolist() == [[True, False, False, False], [False, False, True, True],
                                               [True, False, False, False]]


def test_normalizer_modes_round_trip():
    values = np.array([[0.0, 10.0], [2.0, 30.0]])
    stats = compute_stats(values)
    min_max = Normalizer(stats, "min_max")
    assert torch.allclose(min_max(torch.tensor(values, dtype=torch.float32)), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    mean_std = Normalizer(stats, "mean_std")
    x = torch.tensor([[5.0, -3.0]])
    assert torch.allclose(mean_std.inverse(mean_std(x)), x)
    with pytest.raises(ValueError, match="mode 'zscore'"):
        Normalizer(stats, "zscore")


@pytest.mark.parametrize("kind", ["bc", "act", "diffusion", "diffusion-transformer", "diffusion-transformer-cond",
                                  "diffusion-transformer-causal"])
def test_each_policy_learns_and_acts(kind, one_torch_thread):
    torch.manual_seed(0)
    policy, sampler, frames = build(kind)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, metrics = policy.loss(sampler.sample(32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        policy.after_step()
        losses.append(loss.item())
    assert all(isinstance(value, float) for value in metrics.values())
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])
    deployed = policy.deployable()
    deployed.reset()
    actions = [deployed.select_action({STATE: frames[STATE][i], ENV: frames[ENV][i]}) for i in range(6)]
    assert all(action.shape == (6,) and action.dtype == np.float32 for action in actions)
    if kind == "bc":  # a fixed function of the current state: the MLP gets close to it in a few steps
        error = np.abs(np.array(actions) - frames["action"][:6]).mean()
        assert error < 0.5 * np.abs(frames["action"][:6] - frames["action"].mean(0)).mean()


@pytest.mark.parametrize("kind", ["bc", "act", "diffusion"])
def test_image_inputs_train_and_act(kind, one_torch_thread):
    policy, sampler, frames = build(kind, inputs=(STATE, FRONT))
    loss, _ = policy.loss(sampler.sample(4))
    loss.backward()
    assert policy.cameras[FRONT.replace(".", "__")].project[0].weight.grad.abs().sum() > 0
    action = policy.select_action({STATE: frames[STATE][0], FRONT: frames[FRONT][0]})
    assert action.shape == (6,)


def test_select_action_names_the_mismatched_feature():
    policy, _, frames = build("bc", inputs=(STATE, FRONT))
    with pytest.raises(ValueError, match=r"'observation.environment_state'|lacks feature 'observation.images.front'"):
        policy.select_action({STATE: frames[STATE][0]})
    with pytest.raises(ValueError, match=r"observation.state.*shape \(6,\).*shape \(5,\)"):
        policy.select_action({STATE: frames[STATE][0][:5], FRONT: frames[FRONT][0]})
    with pytest.raises(ValueError, match=r"observation.images.front.*uint8.*float32"):
        policy.select_action({STATE: frames[STATE][0], FRONT: frames[FRONT][0].astype(np.float32)})


def test_missing_input_feature_is_named():
    _, features, _ = synthetic()
    with pytest.raises(ValueError, match="observation.images.wrist"):
        InputSpec.from_features(features, (STATE, "observation.images.wrist"))


def test_act_temporal_ensembling_weights_oldest_chunk_most():
    policy, _, frames = build("act", config=ACTConfig(**{**TINY["act"].__dict__, "temporal_ensemble": 0.5}))
    chunks = iter([torch.zeros(4, 6), torch.ones(4, 6)])
    policy.predict_chunk = lambda batch: next(chunks)
    policy.reset()
    frame = {STATE: frames[STATE][0], ENV: frames[ENV][0]}
    first, second = policy.select_action(frame), policy.select_action(frame)
    normalized = policy.action_norm(torch.tensor(second)).numpy()  # back to the network's units
    expected = np.exp(-0.5) / (1 + np.exp(-0.5))  # weight 1 on the oldest chunk (0), exp(-m) on the newer (1)
    assert np.allclose(normalized, expected, atol=1e-5)
    assert np.allclose(policy.action_norm(torch.tensor(first)).numpy(), 0.0, atol=1e-5)


def test_ddim_with_the_true_noise_recovers_the_clean_sample():
    schedule = NoiseSchedule(100)
    clean = torch.rand(3, 8, 2) * 1.6 - 0.8  # inside the clip range

    def oracle(sample, steps):  # the noise that, at step t, explains `sample` from `clean`
        alpha_bar = schedule.alpha_bar[steps].view(-1, 1, 1)
        return (sample - alpha_bar.sqrt() * clean) / (1 - alpha_bar).sqrt()

    assert torch.allclose(schedule.sample(oracle, clean.shape, 10), clean, atol=1e-4)
    assert schedule.sampling_steps(10) == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]


def test_diffusion_samples_stay_inside_the_demos_action_range():
    """The denoiser is untrained (its samples are far off), so only the sampler's clip keeps them in range."""
    torch.manual_seed(0)
    policy, _, frames = build("diffusion")
    low, high = frames["action"].min(0), frames["action"].max(0)
    for i in range(0, 100, 10):
        policy.reset()
        sampled = policy.select_action({STATE: frames[STATE][i], ENV: frames[ENV][i]})
        assert np.all((sampled >= low - 1e-3) & (sampled <= high + 1e-3)), (sampled, low, high)


@pytest.mark.parametrize("name", ["act", "diffusion-transformer", "diffusion-transformer-cond",
                                  "diffusion-transformer-causal"])
def test_description_rebuilds_the_same_network(name):
    policy, _, frames = build(name)
    rebuilt = policy_from_description(policy.describe())
    rebuilt.load_state_dict(policy.state_dict())
    frame = {STATE: frames[STATE][0], ENV: frames[ENV][0]}
    policy.reset()
    torch.manual_seed(0)  # diffusion samples from noise: the same noise for both
    expected = policy.select_action(frame)
    torch.manual_seed(0)
    assert np.allclose(expected, rebuilt.select_action(frame))
    with pytest.raises(ValueError, match="chunk_sise"):
        policy_from_description({**policy.describe(), "config": {"chunk_sise": 3}})


def test_a_diffusion_policy_saved_before_the_denoiser_choice_loads_as_a_unet():
    policy, _, _ = build("diffusion")
    description = policy.describe()
    del description["config"]["denoiser"]
    rebuilt = policy_from_description(description)
    assert rebuilt.config.denoiser == "unet" and DiffusionConfig().denoiser == "transformer"
    rebuilt.load_state_dict(policy.state_dict())  # strict: the same U-Net


def test_causal_denoiser_reads_no_later_action_or_frame():
    torch.manual_seed(0)
    net = TransformerDenoiser(action_dim=3, horizon=6, n_obs_steps=2, frame_dim=4, d_model=16, layers=2, heads=2,
                              dropout=0.0, causal=True).eval()
    noisy, cond, steps = torch.randn(1, 6, 3), torch.randn(1, 8), torch.tensor([5])
    later_action, later_frame = noisy.clone(), cond.clone()
    later_action[:, 3:] += 1.0  # chunk positions 3-5
    later_frame[:, 4:] += 1.0  # frame 1, the time of chunk position 1
    base = net(noisy, steps, cond)
    moved = net(later_action, steps, cond)
    assert torch.allclose(base[:, :3], moved[:, :3], atol=1e-6) and not torch.allclose(base[:, 3:], moved[:, 3:])
    moved = net(noisy, steps, later_frame)
    assert torch.allclose(base[:, :1], moved[:, :1], atol=1e-6) and not torch.allclose(base[:, 1:], moved[:, 1:])


def test_unknown_denoiser_is_named():
    with pytest.raises(ValueError, match="denoiser = 'wavenet'"):
        DiffusionConfig(denoiser="wavenet")
    with pytest.raises(ValueError, match="transformer_cond_layers = -1"):
        DiffusionConfig(transformer_cond_layers=-1)


@pytest.mark.parametrize("kind", ["bc", "act", "diffusion"])
def test_relative_actions_are_added_to_the_current_state(kind):
    """State constant per episode, actions = state + 5: the relative stats have zero spread, so any network output
    means state + 5."""
    frames, features, bounds = synthetic()
    for start, stop in bounds:
        frames[STATE][start:stop] = frames[STATE][start]
    frames["action"] = frames[STATE] + 5.0
    spec = InputSpec.from_features(features, (STATE, ENV))
    stats = {name: compute_stats(frames[name]) for name in (STATE, ENV, "action")}
    shape = make_il_policy(kind, TINY[kind], spec, stats)
    sampler = ChunkSampler(frames, bounds, spec.names, shape.n_obs_steps, shape.horizon, shape.action_offset)
    relative = sampler.relative_action_stats(STATE)
    assert np.allclose(relative["mean"], 5.0) and np.allclose(relative["std"], 0.0, atol=1e-5)
    policy = make_il_policy(kind, TINY[kind], spec, {**stats, "action": relative}, relative=True)
    policy.reset()
    for i in (0, 40, 80):  # one frame of each episode: BC follows the state; ACT and diffusion reuse old chunks
        action = policy.select_action({STATE: frames[STATE][i], ENV: frames[ENV][i]})
        if kind == "bc" or i == 0:
            assert np.allclose(action, frames[STATE][i] + 5.0, atol=1e-3)
    loss, _ = policy.loss(sampler.sample(8))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="relative actions need input 'observation.state'"):
        make_il_policy(kind, TINY[kind], InputSpec.from_features(features, (ENV,)), stats, relative=True)
