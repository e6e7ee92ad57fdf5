"""Scene composition with every object, and the rollout/gallery commands end to end."""

import subprocess
import sys

import mujoco
import numpy as np

from tidyarm.sim.robot import JOINT_NAMES
from tidyarm.sim.scene import OBJECTS, build_scene


def test_every_object_compiles_and_rests_stably():
    model = build_scene(OBJECTS).compile()
    assert [model.joint(i).name for i in range(6)] == list(JOINT_NAMES)
    data = mujoco.MjData(model)
    data.ctrl[:] = 0.0
    data.qpos[:6] = [0.0, -1.2, 1.0, 0.5, 0.0, 0.0]  # arm folded up and out of the way
    data.ctrl[:6] = data.qpos[:6]
    mujoco.mj_forward(model, data)
    start = {name: data.body(name).xpos.copy() for name in ("cube", "can", "bottle")}
    for _ in range(400):
        mujoco.mj_step(model, data)
    for name, position in start.items():
        assert np.linalg.norm(data.body(name).xpos - position) < 5e-3, name


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-c", "from tidyarm.cli import main; main()", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_rollout_writes_video_and_reports_success(tmp_path):
    result = run_cli("rollout", "--task", "reach", "--episodes", "1", "--video", "out.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1/1 successful" in result.stdout
    assert (tmp_path / "out.mp4").stat().st_size > 1000


def test_gallery_writes_png(tmp_path):
    result = run_cli("gallery", "--task", "lift", "--episodes", "2", "--size", "32", "--out", "g.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from PIL import Image
    assert Image.open(tmp_path / "g.png").size == (4 * 32, 32)


def test_unknown_task_on_cli_lists_valid_tasks(tmp_path):
    result = run_cli("rollout", "--task", "juggle", cwd=tmp_path)
    assert result.returncode != 0 and "reach" in result.stderr
