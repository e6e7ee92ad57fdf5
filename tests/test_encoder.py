"""Image input: camera stacking, augmentations, the conv encoder's sizes and keypoints, supersampling, frame
stacking, and the bad-input errors that name shape and dtype."""

import numpy as np
import pytest
import torch

from tidyarm.rl.encoder import ImageEncoder, color_jitter, default_shift_pad, random_shift, stack_cameras
from tidyarm.rl.frame_stack import FrameStack, FrameStacker
from tidyarm.rl.pixel_actor import PixelActor, PixelNetConfig, PixelPolicy, check_pixel_observation
from tidyarm.sim.env import PROPRIO_SIZE, So101Env


def test_stack_cameras_puts_channels_side_by_side_in_unit_range():
    wrist = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
    front = torch.zeros((2, 8, 8, 3), dtype=torch.uint8)
    images = stack_cameras({"wrist": wrist, "front": front}, ("wrist", "front"))
    assert images.shape == (2, 6, 8, 8) and images[:, :3].min() == 1.0 and images[:, 3:].max() == 0.0


def test_stack_cameras_names_a_float_image():
    with pytest.raises(ValueError, match=r"'front' has dtype torch.float32.*expected uint8"):
        stack_cameras({"front": torch.zeros((1, 8, 8, 3))}, ("front",))


def test_random_shift_moves_whole_images_by_at_most_pad():
    torch.manual_seed(0)
    images = torch.zeros((64, 3, 16, 16))
    images[:, :, 8, 8] = 1.0  # one bright pixel
    shifted = random_shift(images, pad=2)
    rows, cols = (shifted[:, 0] == 1.0).nonzero()[:, 1:].T
    assert len(rows) == 64  # the pixel survives in every sample, on every channel alike
    assert (rows - 8).abs().max() <= 2 and (cols - 8).abs().max() <= 2
    assert len({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)}) > 5  # offsets differ per sample
    assert torch.equal(shifted[:, 0], shifted[:, 2])
    assert torch.equal(random_shift(images, 0), images)


def test_color_jitter_stays_in_range_and_varies_per_sample():
    torch.manual_seed(0)
    images = torch.rand((16, 6, 8, 8))
    jittered = color_jitter(images, 0.3)
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0
    assert not torch.allclose(jittered[0] - images[0], jittered[1] - images[1])
    assert torch.equal(color_jitter(images, 0.0), images)


@pytest.mark.parametrize(("size", "pad"), [(84, 4), (32, 2), (16, 1)])
def test_default_shift_pad_keeps_drqs_share(size, pad):
    assert default_shift_pad(size) == pad


def test_keypoint_pooling_locates_a_bright_spot():
    # With a single conv channel that passes brightness straight through, the spatial softmax's expected
    # coordinates follow the spot: left of centre gives x < 0, lower half gives y > 0.
    encoder = ImageEncoder(in_channels=1, image_size=16, filters=1, pooling="keypoints")
    with torch.no_grad():
        for layer in encoder.convs:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.zero_()
                layer.weight[0, 0, 1, 1] = 20.0
                layer.bias.fill_(10.0)  # cancels the -0.5 offset applied to the input
    image = torch.zeros((1, 1, 16, 16))
    image[0, 0, 12, 3] = 1.0
    x, y = encoder(image)[0]
    assert encoder.repr_dim == 2 and x < -0.5 and y > 0.3


def test_encoder_names_a_wrong_image_shape():
    encoder = ImageEncoder(in_channels=6, image_size=32)
    with pytest.raises(ValueError, match=r"shape \(3, 32, 32\); expected \(6, 32, 32\)"):
        encoder(torch.zeros((1, 3, 32, 32)))


def test_supersampled_image_is_the_block_average_of_the_large_render():
    env = So101Env("lift", obs_mode="pixels", image_size=16, supersample=4, cameras=("front",))
    obs, _ = env.reset(seed=3)
    large = env.render_camera("front", (64, 64)).astype(np.float64)
    expected = np.round(large.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3))).astype(np.uint8)
    assert np.abs(obs["front"].astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="supersample = 0"):
        So101Env("lift", supersample=0)


def test_frame_stack_repeats_the_first_frame_then_rolls():
    stacker = FrameStacker(("front",), 3)
    frames = [np.full((2, 2, 3), value, np.uint8) for value in (1, 2, 3, 4)]
    first = stacker.reset({"front": frames[0], "proprio": 0})
    assert first["front"][0, 0].tolist() == [1] * 9 and first["proprio"] == 0
    for frame in frames[1:]:
        latest = stacker.push({"front": frame})
    assert latest["front"][0, 0].tolist() == [2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_frame_stack_wrapper_space_matches_its_observations():
    env = FrameStack(So101Env("reach", obs_mode="pixels", image_size=16), ("wrist", "front"), 2)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and obs["wrist"].shape == (16, 16, 6)


def test_pixel_policy_refuses_wrong_shape_or_dtype_naming_both():
    net = PixelNetConfig(image_size=16, filters=4, feature_dim=8, hidden_dims=(8,))
    policy = PixelPolicy(PixelActor(net, 5, stochastic=False))
    good = {"wrist": np.zeros((16, 16, 3), np.uint8), "front": np.zeros((16, 16, 3), np.uint8),
            "proprio": np.zeros(PROPRIO_SIZE, np.float32)}
    assert policy(good).shape == (5,)
    with pytest.raises(ValueError, match=r"'front' is float32 \(16, 16, 3\); expected uint8"):
        policy({**good, "front": np.zeros((16, 16, 3), np.float32)})
    with pytest.raises(ValueError, match=r"'wrist' is uint8 \(32, 32, 3\); expected uint8 \(16, 16, 3\)"):
        policy({**good, "wrist": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(ValueError, match="no 'front' image"):
        check_pixel_observation({"wrist": good["wrist"], "proprio": good["proprio"]}, net)
