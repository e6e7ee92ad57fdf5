"""The training loop end to end on tiny budgets: outputs, resume after SIGKILL, bad checkpoints and configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tidyarm.eval import evaluate, resolve_policy
from tidyarm.rl.checkpoint import find_checkpoint
from tidyarm.rl.logger import read_metrics
from tidyarm.rl.sac import SACConfig
from tidyarm.rl.train import TrainConfig, Trainer, resume, train

TINY_SAC = SACConfig(hidden_dims=(32, 32), batch_size=32, learning_starts=50, n_step=3, gamma=0.97)


def tiny_config(run_dir: Path, **overrides) -> TrainConfig:
    values = dict(task="reach", total_steps=200, eval_every=100, eval_episodes=2, checkpoint_every=100,
                  log_every=50, demos=1, run_dir=run_dir, threads=1, sac=TINY_SAC)
    return TrainConfig(**{**values, **overrides})


def test_train_writes_every_artifact(tmp_path):
    run_dir = train(tiny_config(tmp_path / "run"))
    for name in ("config.json", "metrics.csv", "learning_curve.png", "policy.safetensors", "policy.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    meta = json.loads((find_checkpoint(run_dir) / "meta.json").read_text())
    assert meta["step"] == 200
    series = read_metrics(run_dir / "metrics.csv")
    assert [step for step, _ in series["eval/success_rate"]] == [100, 200]
    assert "train/critic_loss" in series


def test_same_seed_same_run(tmp_path):
    first = train(tiny_config(tmp_path / "a"))
    second = train(tiny_config(tmp_path / "b"))
    assert (first / "policy.safetensors").read_bytes() == (second / "policy.safetensors").read_bytes()


def test_eval_of_a_run_directory_reports_interval_and_video(tmp_path):
    run_dir = train(tiny_config(tmp_path / "run", total_steps=100))
    summary = evaluate(resolve_policy(str(run_dir)), episodes=3, out_dir=run_dir, video_episodes=1)
    low, high = summary["success_ci95"]
    assert 0.0 <= low <= summary["success_rate"] <= high <= 1.0
    assert (run_dir / "eval.mp4").stat().st_size > 1000
    assert json.loads((run_dir / "eval_results.json").read_text())["episodes"] == 3


def test_resume_after_sigkill_continues_from_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    config = tiny_config(run_dir, total_steps=2000, checkpoint_every=150, eval_every=1000)
    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
              "from test_train import tiny_config; from tidyarm.rl.train import train;"
              f"train(tiny_config(Path({str(run_dir)!r}), total_steps=2000, checkpoint_every=150, eval_every=1000))")
    process = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoint" / "meta.json").is_file():
        time.sleep(0.2)
    time.sleep(1.0)  # let it run on past the first checkpoint
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved_step = json.loads((find_checkpoint(run_dir) / "meta.json").read_text())["step"]
    assert saved_step >= 150 and saved_step % 150 == 0
    trainer = Trainer(config, resume=True)
    assert trainer.step == saved_step and len(trainer.online) == saved_step
    resume(run_dir)
    assert json.loads((find_checkpoint(run_dir) / "meta.json").read_text())["step"] == 2000
    steps = [step for step, _ in read_metrics(run_dir / "metrics.csv")["eval/success_rate"]]
    assert steps == sorted(set(steps)) and steps[-1] == 2000  # no duplicated rows after the resume


def test_corrupt_truncated_and_mismatched_checkpoints_are_named(tmp_path):
    run_dir = train(tiny_config(tmp_path / "run", total_steps=100))
    agent_file = run_dir / "checkpoint" / "agent.safetensors"
    original = agent_file.read_bytes()
    agent_file.write_bytes(original[: len(original) // 2])
    with pytest.raises(ValueError, match="agent.safetensors"):
        Trainer(tiny_config(run_dir, total_steps=100), resume=True)
    agent_file.write_bytes(original)
    with pytest.raises(ValueError, match="task"):
        Trainer(tiny_config(run_dir, task="lift"), resume=True)
    with pytest.raises(ValueError, match="hidden|shape"):
        Trainer(tiny_config(run_dir, sac=SACConfig(hidden_dims=(16, 16), batch_size=32)), resume=True)
    (run_dir / "checkpoint" / "online.npz").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="online.npz"):
        Trainer(tiny_config(run_dir), resume=True)


def test_policy_for_another_task_is_refused(tmp_path):
    run_dir = train(tiny_config(tmp_path / "run", total_steps=60))
    with pytest.raises(ValueError, match="trained on task 'reach'"):
        evaluate(resolve_policy(str(run_dir)), episodes=1, task="lift")


@pytest.mark.parametrize(("field", "value"), [("total_steps", 0), ("eval_episodes", -1), ("threads", 0),
                                              ("task", "juggle"), ("algo", "ppo")])
def test_invalid_config_is_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field if field not in ("task", "algo") else str(value)):
        TrainConfig(**{field: value})


def test_cli_rejects_bad_value_before_work(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from tidyarm.cli import main; main()", "train",
                             "--total-steps", "-5", "--run-dir", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "total_steps" in result.stderr
    assert not (tmp_path / "r").exists()


def test_bc_warm_start_runs_and_is_logged(tmp_path):
    sac = SACConfig(hidden_dims=(32, 32), batch_size=32, learning_starts=50, bc_warmup_steps=20,
                    critic_warmup_steps=10, bc_weight=0.4)
    run_dir = train(tiny_config(tmp_path / "run", total_steps=120, sac=sac))
    series = read_metrics(run_dir / "metrics.csv")
    assert "warmup/bc_loss" in series and "train/bc_loss" in series


def test_published_policy_evaluates_and_records_its_command(tmp_path):
    from tidyarm.rl.policy_io import publish_policy
    run_dir = train(tiny_config(tmp_path / "run", total_steps=60))
    out = publish_policy(run_dir, tmp_path / "pretrained" / "reach", "tidyarm train --task reach")
    assert json.loads((out / "policy.json").read_text())["command"] == "tidyarm train --task reach"
    summary = evaluate(resolve_policy(str(out)), episodes=2)
    assert summary["episodes"] == 2 and summary["task"] == "reach"


def test_unknown_pretrained_name_lists_what_exists():
    with pytest.raises(ValueError, match="no pretrained policy for 'juggle'"):
        resolve_policy("pretrained:juggle")


@pytest.mark.parametrize("task", ["reach", "lift", "place", "lift-pixels"])
def test_shipped_pretrained_policy_fits_its_env_and_succeeds(task):
    # Catches a pretrained policy left behind by a change to the observation layout, and a broken export.
    summary = evaluate(resolve_policy(f"pretrained:{task}"), episodes=5)
    assert summary["success_rate"] >= 0.6, summary


@pytest.mark.parametrize(("argv", "expected"), [(["--total-steps", "50000"], 50_000),
                                                (["--total-steps=50000"], 50_000), ([], None)])
def test_resume_extends_only_when_total_steps_is_typed(monkeypatch, tmp_path, argv, expected):
    # 50000 is also the default value, so only the command line can tell "typed" from "not given".
    import tidyarm.rl.train
    from tidyarm.cli import run_train
    from tidyarm.rl.train import TrainCommand

    calls = []
    monkeypatch.setattr(tidyarm.rl.train, "resume", lambda run_dir, steps: calls.append(steps) or run_dir)
    run_train(TrainCommand(config=TrainConfig(total_steps=50_000), resume=tmp_path), ["--resume", "x", *argv])
    assert calls == [expected]
