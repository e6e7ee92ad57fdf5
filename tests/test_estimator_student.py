"""The estimator student: it fills the teacher's state vector with its estimate, keeps the teacher frozen,
deploys through policy.json, and refuses to resume as the other kind of student."""

import numpy as np
import pytest
import torch
from test_pixel_routes import TINY_NET, tiny_distill

from tidyarm.eval import resolve_policy
from tidyarm.rl.distill import Distiller, distill
from tidyarm.rl.estimator_student import EstimatorStudent, estimated_features, state_template
from tidyarm.rl.pixel_actor import actor_inputs
from tidyarm.rl.policy_io import load_policy
from tidyarm.sim.env import PROPRIO_SIZE, EnvConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_perfect_estimate_rebuilds_the_teacher_state_with_quaternions_pinned():
    env = EnvConfig(task="lift").make()
    state, _ = env.reset(seed=3)
    layout = env.state_layout
    estimated = estimated_features(layout)
    assert all(index >= PROPRIO_SIZE for index in estimated)
    assert not set(estimated) & set(range(layout["cube_quat"].start, layout["cube_quat"].stop))
    teacher = resolve_policy("pretrained:lift").loaded.policy.actor
    student = EstimatorStudent(TINY_NET, teacher, estimated, state_template(layout))
    true = torch.as_tensor(state)[None]
    student.feature_normalizer.fit(torch.cat([true[:, estimated], true[:, estimated] + 1.0]))
    perfect = student.feature_normalizer(true[:, estimated])
    rebuilt = student.teacher_state(perfect, true[:, :PROPRIO_SIZE])[0].numpy()
    expected = state.copy()
    expected[layout["cube_quat"]] = [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(rebuilt, expected, atol=1e-5)


def test_estimator_distillation_keeps_the_teacher_frozen_and_deploys(tmp_path):
    run_dir = distill(tiny_distill(tmp_path / "run", student="estimator", iterations=1))
    loaded = load_policy(run_dir)
    assert loaded.meta["student"]["kind"] == "estimator"
    deployed = loaded.policy.actor
    assert isinstance(deployed, EstimatorStudent)
    teacher = resolve_policy("pretrained:reach").loaded.policy.actor
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(deployed.teacher.state_dict()[name], value)  # fitting never moved the teacher
    assert deployed.feature_normalizer.std.ne(1.0).any()  # fitted from the collected states

    env = loaded.env_config.make()
    obs, _ = env.reset(seed=0)
    loaded.reset()
    action = loaded(obs)
    with torch.inference_mode():
        mean, _ = deployed(*actor_inputs(obs, TINY_NET.cameras, torch.device("cpu"), single=True))
    np.testing.assert_allclose(action, torch.tanh(mean)[0].numpy(), atol=1e-6)
    assert action.shape == env.action_space.shape and np.all(np.abs(action) <= 1.0)


def test_resuming_as_the_other_kind_of_student_is_refused(tmp_path):
    run_dir = distill(tiny_distill(tmp_path / "run", iterations=1))
    with pytest.raises(ValueError, match="field 'student' is 'actor'.*expects 'estimator'"):
        Distiller(tiny_distill(run_dir, student="estimator"), resume=True)
