"""Locating the cube from the wrist camera: the geometry matches what the camera renders, a pixel's ray lands
back on the point it came from, the locator overwrites only a resting cube and keeps its fix, and a lift
distillation with it trains the detector and deploys."""

import mujoco
import numpy as np
import pytest
import torch
from test_pixel_routes import tiny_distill

from tidyarm.rl.cube_locator import LIFTED_Z, CubeDetector, CubeLocator, detector_loss, in_view_labels
from tidyarm.rl.distill import DistillConfig, distill
from tidyarm.rl.estimator_student import EstimatorStudent
from tidyarm.rl.logger import read_metrics
from tidyarm.rl.policy_io import load_policy
from tidyarm.sim.env import EnvConfig
from tidyarm.sim.wrist_geometry import RESTING_CUBE_Z, WristGeometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LOOKING_DOWN = np.array([0.03, -0.44, 0.31, 1.61, 0.0, 0.71])  # joint angles (rad): the wrist camera sees the table


def test_projection_matches_where_the_camera_renders_the_cube():
    env = EnvConfig(task="lift", randomize=False).make()
    env.reset(seed=0)
    geometry = WristGeometry(("cube",), image_size=64)
    env.data.qpos[env.kin.qpos_adr] = LOOKING_DOWN
    below, _ = geometry.ray_to_plane(np.array([[40.0, 24.0]]), LOOKING_DOWN[None])  # off-centre on purpose
    env.task.place_cube(env.data, below[0, :2], np.random.default_rng(0))
    mujoco.mj_forward(env.model, env.data)
    cube = env.task.cube_pos(env.data)
    pixel = geometry.project(cube[None], LOOKING_DOWN[None])[0]
    assert np.all((pixel > 8) & (pixel < 56)), pixel  # well inside the picture
    renderer = mujoco.Renderer(env.model, 64, 64)
    renderer.enable_segmentation_rendering()
    renderer.update_scene(env.data, "wrist")
    rows, cols = np.nonzero(renderer.render()[..., 0] == env.model.geom("cube").id)
    renderer.close()
    centroid = np.array([cols.mean(), rows.mean()]) + 0.5  # pixel i spans [i, i + 1)
    assert np.linalg.norm(centroid - pixel) < 2.0, (centroid, pixel)


def test_a_pixels_ray_lands_on_the_point_it_came_from():
    geometry = WristGeometry(("cube",), image_size=32)
    rng = np.random.default_rng(0)
    joints = LOOKING_DOWN + rng.normal(0, 0.05, (5, 6))
    camera = np.array([geometry.pose(pose)[0] for pose in joints])
    points = np.column_stack([camera[:, :2] + rng.normal(0, 0.03, (5, 2)), np.full(5, RESTING_CUBE_Z)])
    hits, grasps = geometry.ray_to_plane(geometry.project(points, joints), joints)
    np.testing.assert_allclose(hits, points, atol=1e-6)
    np.testing.assert_allclose(grasps[0], geometry.pose(joints[0])[2])


def located_state(locator, pixel, in_view, cube_z):
    """Run the locator on one frame whose estimated cube rests at cube_z, the detector patched to say pixel."""
    locator.detector.forward = lambda images: (torch.tensor(np.array([pixel]), dtype=torch.float32),
                                               torch.tensor([5.0 if in_view else -5.0]))
    state = torch.zeros(1, 10)
    state[0, 2] = cube_z
    return locator.correct(state, torch.zeros(1, 3, 32, 32), torch.as_tensor(LOOKING_DOWN[None]))[0].numpy()


def test_the_locator_places_a_resting_cube_and_holds_the_fix():
    locator = CubeLocator(("cube",), 32, cube_pos=slice(0, 3), cube_to_grasp=slice(3, 6))
    geometry = locator.geometry
    point, _ = geometry.ray_to_plane(np.array([[10.0, 20.0]]), LOOKING_DOWN[None])
    point = point[0]
    pixel = geometry.project(point[None], LOOKING_DOWN[None])[0]
    grasp = geometry.pose(LOOKING_DOWN)[2]
    state = located_state(locator, pixel, in_view=True, cube_z=0.02)
    np.testing.assert_allclose(state[:3], point, atol=1e-5)
    np.testing.assert_allclose(state[3:6], point - grasp, atol=1e-5)
    held = located_state(locator, [1.0, 1.0], in_view=False, cube_z=0.02)  # out of view: the fix holds
    np.testing.assert_allclose(held[:3], point, atol=1e-5)
    lifted = located_state(locator, pixel, in_view=True, cube_z=LIFTED_Z + 0.01)  # held cube: the estimate stays
    assert lifted[2] == pytest.approx(LIFTED_Z + 0.01) and not lifted[:2].any()
    locator.reset()
    forgotten = located_state(locator, [1.0, 1.0], in_view=False, cube_z=0.02)
    assert not forgotten[:2].any()


def test_detector_loss_ignores_the_pixel_of_a_cube_out_of_view():
    geometry = WristGeometry(("cube",), image_size=32)
    centre = np.array([[16.0, 16.0]])
    resting, _ = geometry.ray_to_plane(centre, LOOKING_DOWN[None])
    held, _ = geometry.ray_to_plane(centre, LOOKING_DOWN[None], height=0.05)  # lifted: in view all the same
    cubes = np.array([resting[0], [5.0, 5.0, RESTING_CUBE_Z], held[0]])
    target, in_view = in_view_labels(geometry, cubes, np.stack([LOOKING_DOWN] * 3))
    assert in_view.tolist() == [True, False, True]
    pixel = torch.zeros(3, 2, requires_grad=True)
    loss = detector_loss(pixel, torch.zeros(3), torch.as_tensor(target, dtype=torch.float32), torch.as_tensor(in_view))
    loss.backward()
    assert torch.isfinite(loss) and pixel.grad[0].abs().sum() > 0 and not pixel.grad[1].any()


def red_squares(count, rng, size=16):
    """Noisy grey images, a red 2x2 square at a random place in half of them: (images, centre pixels, in view)."""
    images = 0.4 + 0.1 * rng.random((count, 3, size, size))
    corners = rng.integers(0, size - 1, (count, 2))
    in_view = rng.random(count) < 0.5
    for image, (u, v), seen in zip(images, corners, in_view, strict=True):
        if seen:
            image[:, v:v + 2, u:u + 2] = np.array([0.9, 0.1, 0.1])[:, None, None]
    as_tensor = lambda values: torch.as_tensor(values, dtype=torch.float32)  # noqa: E731
    return as_tensor(images), as_tensor(corners + 1.0), torch.as_tensor(in_view)


def test_the_detector_learns_where_the_cube_is_and_whether_it_is_there():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    detector = CubeDetector(image_size=16, channels=16)
    optimizer = torch.optim.Adam(detector.parameters(), lr=3e-3)
    for _ in range(300):
        images, corners, in_view = red_squares(32, rng)
        loss = detector_loss(*detector(images), corners, in_view)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    images, corners, in_view = red_squares(200, rng)
    with torch.no_grad():
        pixel, in_view_logit = detector(images)
    assert ((in_view_logit > 0) == in_view).float().mean() > 0.9
    assert (pixel - corners)[in_view].norm(dim=-1).median() < 1.0  # pixels


def test_locate_cube_is_refused_where_it_cannot_work(tmp_path):
    with pytest.raises(ValueError, match="locate_cube needs student 'estimator'.*'actor'"):
        DistillConfig(student="actor", locate_cube=True)
    DistillConfig(locate_cube=True)  # the README's `tidyarm distill --locate-cube`: the defaults accept it
    with pytest.raises(ValueError, match=r"reach task's state has no \['cube_pos', 'cube_to_grasp'\]"):
        distill(tiny_distill(tmp_path / "reach", student="estimator", locate_cube=True, locate_batch=8))


def test_lift_distillation_trains_the_detector_and_deploys_the_locator(tmp_path):
    run_dir = distill(tiny_distill(tmp_path / "run", teacher="pretrained:lift", student="estimator",
                                   locate_cube=True, iterations=1, locate_batch=8))
    assert read_metrics(run_dir / "metrics.csv")["train/locate_loss"][0][1] > 0
    loaded = load_policy(run_dir)
    student = loaded.policy.actor
    assert isinstance(student, EstimatorStudent) and student.locator is not None
    env = loaded.env_config.make()
    obs, _ = env.reset(seed=0)
    loaded.reset()
    assert np.all(np.abs(loaded(obs)) <= 1.0)
    assert student.locator.fixes is not None and len(student.locator.fixes) == 1
    loaded.reset()
    assert student.locator.fixes is None
