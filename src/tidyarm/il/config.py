"""`tidyarm train-il` configuration: which policy, which demonstrations, how long, where to write."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from tidyarm.il.act import ACTConfig
from tidyarm.il.base import config_from_dict
from tidyarm.il.bc import BCConfig
from tidyarm.il.diffusion import DiffusionConfig
from tidyarm.il.registry import POLICIES

STATE_INPUTS = ("observation.state", "observation.environment_state")
# Step budgets and peak learning rates of the recipes measured in docs/imitation.md (place, 50 demos, 1 CPU thread).
DEFAULT_STEPS = {"bc": 5_000, "act": 20_000, "diffusion": 30_000}
DEFAULT_LR = {"bc": 1e-3, "act": 2e-4, "diffusion": 2e-4, "diffusion-unet": 3e-4}


@dataclass(frozen=True)
class TrainILConfig:
    """Train an imitation policy (BC, ACT or diffusion) on demonstrations."""

    policy: str = "act"
    """Policy: bc, act or diffusion."""
    dataset: str = "expert:place:50"
    """A LeRobot v3.0 dataset directory, or expert:<task>:<episodes> to record scripted demos in memory."""
    episodes: int | None = None
    """Train on the first N episodes of the dataset (default: all)."""
    task: str | None = None
    """Sim task to evaluate in (default: the expert: task, or the one matching the dataset's instruction)."""
    inputs: tuple[str, ...] = STATE_INPUTS
    """Observation features the policy reads, e.g. observation.state observation.images.front."""
    relative_actions: bool = True
    """Predict joint targets minus the current joint state (needs observation.state among the inputs)."""
    image_size: int = 64
    """Camera size (px) when recording expert: demos with image inputs."""
    demo_noise: float = 0.0
    """expert: demos only: DART noise, the std of Gaussian noise on the expert's executed motion commands
    (labels stay its clean commands), so the demos show recoveries from the drift a policy makes."""
    demo_misses: float = 0.0
    """expert: demos only: the share of episodes that open with a missed grasp (the jaw closes beside the cube;
    labels stay the true expert's commands, which reopen and retry), so the demos show how to retry."""
    steps: int | None = None
    """Optimizer steps (default: bc 5000, act 20000, diffusion 30000)."""
    batch_size: int = 64
    """Samples per step."""
    lr: float | None = None
    """Peak AdamW learning rate after a linear warm-up, cosine-decayed to zero (default: bc 1e-3, act 2e-4,
    diffusion 2e-4, or 3e-4 with the U-Net denoiser)."""
    warmup_steps: int = 500
    """Steps of linear learning-rate warm-up."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 10.0
    """Clip the gradient norm to this."""
    eval_every: int = 0
    """Evaluate in the sim every this many steps (0: only after the last step)."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation (0: none; `tidyarm eval` afterwards uses 100)."""
    checkpoint_every: int = 1_000
    """Write a checkpoint and the deployable policy every this many steps."""
    log_every: int = 100
    """Log training metrics every this many steps."""
    randomize: bool = True
    """Domain randomization in the evaluation env (and in expert: recordings)."""
    seed: int = 0
    """Seed of the networks and batch sampling (expert: demos use seeds 0, 1, ...)."""
    threads: int = 1
    """torch CPU threads."""
    run_dir: Path | None = None
    """Run directory (default runs/il-<policy>)."""
    bc: BCConfig = BCConfig()
    """BC network (policy bc)."""
    act: ACTConfig = ACTConfig()
    """ACT network and inference (policy act)."""
    diffusion: DiffusionConfig = DiffusionConfig()
    """Diffusion Policy network and sampler (policy diffusion)."""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r}: expected one of {list(POLICIES)}")
        for name, low in (("batch_size", 1), ("eval_every", 0), ("eval_episodes", 0),
                          ("checkpoint_every", 1), ("log_every", 1), ("warmup_steps", 0), ("seed", 0),
                          ("threads", 1), ("image_size", 8)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} = {getattr(self, name)}: expected an integer >= {low}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps = {self.steps}: expected at least 1")
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"episodes = {self.episodes}: expected at least 1")
        if not self.peak_lr > 0:
            raise ValueError(f"lr = {self.lr}: expected a positive learning rate")

    @property
    def total_steps(self) -> int:
        return self.steps if self.steps is not None else DEFAULT_STEPS[self.policy]

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        unet = self.policy == "diffusion" and self.diffusion.denoiser == "unet"
        return DEFAULT_LR["diffusion-unet" if unet else self.policy]

    @property
    def policy_config(self) -> BCConfig | ACTConfig | DiffusionConfig:
        return {"bc": self.bc, "act": self.act, "diffusion": self.diffusion}[self.policy]

    def resolved_run_dir(self) -> Path:
        return self.run_dir or Path("runs") / f"il-{self.policy}"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "run_dir": str(self.resolved_run_dir())}

    @classmethod
    def from_dict(cls, values: dict) -> TrainILConfig:
        nested = {"bc": BCConfig, "act": ACTConfig, "diffusion": DiffusionConfig}
        configs = {name: config_from_dict(kind, values[name]) for name, kind in nested.items() if name in values}
        return cls(**{**values, **configs, "inputs": tuple(values["inputs"]), "run_dir": Path(values["run_dir"])})


@dataclass(frozen=True)
class TrainILCommand:
    """Train an imitation policy (BC, ACT or diffusion) on demonstrations; evaluate it with `tidyarm eval RUN_DIR`."""

    config: Annotated[TrainILConfig, tyro.conf.arg(name="")] = TrainILConfig()
    """Run configuration (ignored with --resume, which reads the run's own config.json)."""
    resume: Path | None = None
    """Continue the run in this directory from its last checkpoint (--steps typed here extends it)."""
