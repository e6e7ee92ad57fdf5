"""`tidyarm hil`: HIL-SERL fine-tuning on a robot, as one command or as two processes on two machines.

  tidyarm hil --robot sim-gap --init pretrained:lift-pixels --classifier runs/reward-lift       # both, here
  tidyarm hil --role learner --bind 0.0.0.0:6001 ...                                           # GPU box
  tidyarm hil --role actor --learner gpu-box:6001 ...                                          # robot laptop

With `--role both` the learner runs in this process and the actor in a child process it supervises: an actor
that dies is restarted (it reconnects and the learner tells it which episode is next). `--resume RUN_DIR`
continues from the last checkpoint with both buffers.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from tidyarm.hil.config import HILConfig
from tidyarm.rl.checkpoint import read_json

ROLES = ("both", "learner", "actor")


@dataclass(frozen=True)
class HILCommand:
    """HIL-SERL: fine-tune a sim-trained pixel policy on a robot with a reward classifier and interventions."""

    config: Annotated[HILConfig, tyro.conf.arg(name="")] = HILConfig()
    role: str = "both"
    """both (learner here, actor in a supervised child process), learner, or actor."""
    resume: Path | None = None
    """Continue this run directory from its checkpoint (its hil_config.json wins)."""
    max_actor_restarts: int = 5
    """With --role both: how often a dead actor is restarted before the run stops."""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r}: expected one of {list(ROLES)}")


class ActorSupervisor:
    """Starts the actor in a child process and restarts it when it dies before the learner is done."""

    def __init__(self, config: HILConfig, max_restarts: int):
        self.config, self.max_restarts, self.restarts = config, max_restarts, 0
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch/GL state
        self.process = self._start()

    def _start(self):
        os.environ.setdefault("MUJOCO_GL", "egl")  # the child renders headless; inherited at spawn
        process = self._context.Process(target=_actor_main, args=(self.config,), name="hil-actor", daemon=True)
        process.start()
        return process

    def check(self) -> None:
        """Called by the learner's loop: restart a dead actor (its exit code is logged)."""
        if self.process.is_alive() or self.process.exitcode == 0:
            return
        if self.restarts >= self.max_restarts:
            raise RuntimeError(f"the actor died {self.restarts + 1} times (last exit code {self.process.exitcode}); "
                               "the learner's checkpoint keeps everything: fix the cause and --resume")
        self.restarts += 1
        logging.warning("actor exited with code %s; restarting it (%d/%d)", self.process.exitcode, self.restarts,
                        self.max_restarts)
        self.process = self._start()

    def stop(self, timeout: float = 30.0) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def _actor_main(config: HILConfig) -> None:
    from tidyarm.hil.actor import run_actor

    run_actor(config)


def run_hil(command: HILCommand) -> dict | None:
    """Run the chosen role(s); returns the learner's summary (None for the actor role)."""
    config = command.config
    if command.resume is not None:
        saved = HILConfig.from_dict(read_json(command.resume / "hil_config.json"))
        config = dataclasses.replace(saved, run_dir=command.resume, bind=config.bind, learner=config.learner)
    if command.role == "actor":
        _actor_main(config)
        return None
    from tidyarm.hil.curves import plot_hil_curves
    from tidyarm.hil.learner import Learner

    logging.basicConfig(level=logging.INFO, format="[%(processName)s] %(message)s")
    if command.role == "both":  # refuse a bad classifier here, not after the actor has died five times
        from tidyarm.hil.actor import load_hil_classifier
        from tidyarm.robot.deploy import load_pixel_policy

        load_hil_classifier(config, load_pixel_policy(config.init).env_config)
    learner = Learner(config, resume=command.resume is not None)
    logging.info("learner listening on %s", learner.server.address)
    supervisor = None
    if command.role == "both":
        actor_config = dataclasses.replace(config, learner=learner.server.address)
        supervisor = ActorSupervisor(actor_config, command.max_actor_restarts)
    try:
        summary = learner.run(on_idle=None if supervisor is None else supervisor.check)
    finally:
        if supervisor is not None:
            supervisor.stop()
    summary["actor_restarts"] = 0 if supervisor is None else supervisor.restarts
    summary["curves"] = str(plot_hil_curves(learner.run_dir))
    return summary
