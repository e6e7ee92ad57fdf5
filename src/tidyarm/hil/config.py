"""What a HIL-SERL run needs, shared by the learner and the actor (each reads its part)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from tidyarm.hil.intervention import INTERVENERS
from tidyarm.hil.transport import parse_address
from tidyarm.rl.vsac import VisualSACConfig
from tidyarm.robot.sim_robot import ROBOT_PRESETS

AUTHKEY_ENV = "TIDYARM_HIL_AUTHKEY"

# Fine-tuning a pretrained pixel actor on a robot: no privileged state, so the critic reads the cameras. It
# reads them through the policy's own conv encoder, frozen (HIL-SERL freezes its pretrained encoder too): no
# fresh critic can scramble the features the policy acts on, and an update costs conv forwards only (1.8x the
# updates/s of a critic with its own trained encoder). The critic is fitted for 1,000 updates before the actor
# moves. With actor_lr 1e-4, no anchor and trained encoders, lift success on sim-gap-mild fell from 70% to 0/10
# within 450 actor updates (mean action drift 0.2-0.36 per dimension); a slower actor (3e-5) pulled toward the
# sim policy (anchor_weight 4) drifted 0.03-0.08. Intervention rows also anchor it (bc_weight). docs/hil.md.
DEFAULT_HIL_SAC = VisualSACConfig(
    asymmetric_critic=False, critic_encoder="frozen", batch_size=128, utd_ratio=1, actor_update_every=2, n_step=3,
    gamma=0.97, init_temperature=0.01, actor_lr=3e-5, learning_starts=1000, critic_warmup_steps=1000,
    bc_warmup_steps=0, bc_weight=0.4, anchor_weight=4.0, offline_fraction=0.5,
    target_entropy=-10.0)  # -2 x action_dim: sampled actions stray less where the intervener watches (docs/hil.md)


@dataclass(frozen=True)
class HILConfig:
    """HIL-SERL on a robot: the learner trains visual SAC on what the actor sends; the actor runs the policy on
    the robot, with a reward classifier for reward and a person (or the scripted intervener) stepping in."""

    init: str = "pretrained:lift-pixels"
    """The sim-trained pixel policy to start from: pretrained:<name> or a run directory (its policy.json)."""
    classifier: Path | None = None
    """Reward classifier directory (from `tidyarm train-reward`); required."""
    robot: str = "sim-gap"
    """Robot: sim, sim-gap (the held-out gap) or sim-gap-mild."""
    intervener: str = "scripted"
    """Who steps in: scripted (the sim's expert), keyboard, gamepad, leader (SO-101 leader arm) or none."""
    run_dir: Path = Path("runs/hil")
    """Where the learner keeps config, logs, curves, checkpoints and the policy."""
    max_episode_steps: int | None = None
    """Steps per episode on the robot (None: the task's sim limit). A real arm, or one behind a reality gap, is
    often slower than the sim it trained in: give it the time a person would."""
    total_steps: int = 72_000
    """Robot control steps to train for (72,000 at 10 Hz = 2 hours of robot time)."""
    demos: int = 10
    """Episodes the intervener drives at the start, into the offline buffer (HIL-SERL records ~20)."""
    eval_every: int = 20
    """Training episodes between evaluation blocks (deterministic policy, no interventions)."""
    eval_episodes: int = 10
    """Episodes per evaluation block (their data is kept: it is robot time too)."""
    stop_success: float = 1.01
    """Stop once an evaluation block reaches this success (measured by the evaluation oracle on a simulated
    robot); above 1 never stops early."""
    classifier_threshold: float | None = None
    """Probability at which a frame counts as success (None: the threshold saved with the classifier)."""
    success_frames: int = 10
    """Consecutive classifier-success frames that count as success (10 at 10 Hz = lift's 1 s hold)."""
    seed: int = 0
    """Seed of the networks and the first scene (episode i uses scene seed + i)."""
    max_ahead: int = 200
    """The actor waits between episodes while it is this many steps ahead of what the learner's updates cover
    (update-to-data pacing for a robot that runs faster than real time)."""
    realtime: bool = False
    """Pace the simulated robot to its control rate (a real arm's clock)."""
    bind: str = "127.0.0.1:0"
    """Learner address HOST:PORT (port 0 picks a free one; 0.0.0.0 to accept an actor on another machine)."""
    learner: str | None = None
    """Actor only: the learner's HOST:PORT."""
    link_timeout: float = 10.0
    """Seconds without a message from the learner after which the actor holds the arm and reconnects."""
    reconnect_timeout: float = 120.0
    """Seconds the actor keeps trying to reach the learner before it gives up."""
    weights_every: int = 100
    """Learner updates between pushes of the actor's weights."""
    checkpoint_every: int = 2_000
    """Robot steps between checkpoints (weights, optimizers, both buffers, counters)."""
    threads: int = 1
    """torch CPU threads in each process."""
    device: str = "cpu"
    """Learner's torch device (cpu or cuda)."""
    sac: VisualSACConfig = DEFAULT_HIL_SAC
    """Visual SAC hyperparameters of the learner."""

    def __post_init__(self) -> None:
        if self.robot not in ROBOT_PRESETS:
            raise ValueError(f"unknown robot {self.robot!r}; valid: {sorted(ROBOT_PRESETS)}")
        if self.intervener not in INTERVENERS:
            raise ValueError(f"unknown intervener {self.intervener!r}; valid: {list(INTERVENERS)}")
        for name, low in (("total_steps", 1), ("demos", 0), ("eval_every", 1), ("eval_episodes", 0),
                          ("success_frames", 1), ("seed", 0), ("max_ahead", 1), ("weights_every", 1),
                          ("checkpoint_every", 1), ("threads", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} = {getattr(self, name)}: expected an integer >= {low}")
        for name in ("link_timeout", "reconnect_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)}: expected a positive number of seconds")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps = {self.max_episode_steps}: expected None or an integer >= 1")
        if self.sac.asymmetric_critic:
            raise ValueError("sac.asymmetric_critic = True: a robot has no privileged state for the critic")
        if self.demos and self.intervener == "none":
            raise ValueError(f"demos = {self.demos} needs an intervener to drive them (intervener is 'none')")
        parse_address(self.bind)
        if self.learner is not None:
            parse_address(self.learner)

    @property
    def authkey(self) -> bytes:
        """The link's key: TIDYARM_HIL_AUTHKEY, or a fixed local default (fine on one machine only)."""
        return os.environ.get(AUTHKEY_ENV, "tidyarm-hil-local").encode()

    def episode_mode(self, index: int) -> str:
        """'demo' for the first `demos` episodes, then blocks of `eval_every` 'train' and `eval_episodes` 'eval'."""
        if index < self.demos:
            return "demo"
        position = (index - self.demos) % (self.eval_every + self.eval_episodes)
        return "train" if position < self.eval_every else "eval"

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values.update(run_dir=str(self.run_dir), classifier=None if self.classifier is None else str(self.classifier))
        return values

    @classmethod
    def from_dict(cls, values: dict) -> HILConfig:
        sac = {key: tuple(value) if isinstance(value, list) else value for key, value in values["sac"].items()}
        classifier = values.get("classifier")
        return cls(**{**values, "sac": VisualSACConfig(**sac), "run_dir": Path(values["run_dir"]),
                      "classifier": None if classifier is None else Path(classifier)})
