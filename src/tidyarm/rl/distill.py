"""Teacher-student distillation: a state policy (the teacher) teaches an image policy (the student).

DAgger (Ross et al., 2011): every iteration rolls out a mixture that follows the teacher with probability
beta and the student otherwise, labels every visited observation with the teacher's action, adds the pairs
to one growing dataset and refits the student on all of it. The student thus learns to recover from its own
mistakes, which plain behaviour cloning from teacher rollouts (method "bc": beta = 1 throughout) never
shows it. The env runs in "state+pixels" mode: the teacher reads the state vector, the student only the
cameras and proprioception. Randomization stays on, so the student must see through it.

An auxiliary loss (`aux_weight`) also asks the student's image features to predict the task's privileged
features (object and goal poses, standardized) through a linear head used only in training: the teacher's
actions alone are a weak signal for where a 2-pixel cube is, the state says it directly.

The defaults are the recipe that met the lift target when `locate_cube` is added (on lift: 88% and 86% for
two training seeds, 0.96x the teacher, 30 minutes on 2 cores; docs/pixels.md).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro
from torch import nn
from tqdm import tqdm

from tidyarm import __version__
from tidyarm.eval import EVAL_SEED, resolve_policy
from tidyarm.plots import plot_learning_curve
from tidyarm.rl.agent_state import pack_agent_state, unpack_agent_state
from tidyarm.rl.checkpoint import check_meta, find_checkpoint, load_tensors, read_json, save_checkpoint, write_json
from tidyarm.rl.cube_locator import CubeLocator, detector_loss, in_view_labels
from tidyarm.rl.encoder import color_jitter, default_shift_pad, random_shift, stack_cameras
from tidyarm.rl.estimator_student import EstimatorStudent, estimated_features, state_template
from tidyarm.rl.labelled_frames import LabelledFrames
from tidyarm.rl.logger import RunLogger
from tidyarm.rl.networks import ObsNormalizer
from tidyarm.rl.pixel_actor import PixelActor, PixelNetConfig, PixelPolicy, actor_inputs, observation_tensors
from tidyarm.rl.policy_io import LoadedPolicy, export_pixel_policy
from tidyarm.sim.tasks import TASKS
from tidyarm.sim.vector import make_vector_env

DAGGER_SEED = 3_000_000  # collection episodes use their own seeds, apart from training, demos and evaluation
FIRST_FRAME_SEED = 4_000_000  # scenes recorded at their first frame only (reset_frames)
METHODS = ("dagger", "bc")
STUDENTS = ("actor", "estimator")


@dataclass(frozen=True)
class DistillConfig:
    """Distill a state teacher into an image student (DAgger, or plain BC from teacher rollouts)."""

    teacher: str = "pretrained:lift"
    """The teacher: a state run directory or pretrained:<task>."""
    method: str = "dagger"
    """dagger (student rollouts labelled by the teacher) or bc (teacher rollouts only, the baseline)."""
    student: str = "estimator"
    """actor: images -> action, fitted to the teacher's actions; estimator: images -> the teacher's privileged
    inputs, on which the frozen teacher then acts (see estimator_student.py)."""
    net: PixelNetConfig = PixelNetConfig()
    """The student's cameras, image size and network."""
    iterations: int = 14
    """Collect-then-fit rounds."""
    episodes_per_iteration: int = 24
    """Episodes collected per round."""
    beta_decay: float = 0.95
    """DAgger's teacher share: 1 in round 0, then beta_decay**round. With 0.85 (0.12 by round 14) the lift
    student (with locate_cube) scored 72%, against 88% and 86% at 0.95."""
    fit_steps: int = 2000
    """Gradient steps on the whole dataset after each round."""
    batch_size: int = 128
    """Observations per gradient step."""
    lr: float = 3e-4
    """Adam learning rate of the student."""
    color_jitter: float = 0.1
    """Colour-jitter strength on training images (0 = off); random shifts are always on."""
    aux_weight: float = 1.0
    """Weight of the auxiliary loss predicting the privileged task features from image features (0 = off)."""
    locate_cube: bool = False
    """Estimator student only: also learn to find the cube in the wrist image, and while it rests on the table
    let the wrist camera's geometry place it (cube_locator.py) instead of the estimate. Off by default because
    tasks without a cube (reach) cannot use it; on lift it lifted the BC recipe from 75-77% to 85-86%."""
    locate_batch: int = 32
    """Frames per gradient step for the cube detector (with locate_cube)."""
    locate_every: int = 4
    """Fit the cube detector on every this many gradient steps: it learns from far fewer frames than the
    estimator, and fitted on every step (24 ms per 32 frames, one thread) it made a round take 2.75 min
    instead of about 1.5."""
    reset_frames: int = 300
    """Extra scenes per round recorded at their first frame only (a reset and a render each, no rollout). A
    round's episodes hold only as many object placements as episodes; these add placements cheaply."""
    eval_episodes: int = 20
    """Student episodes per evaluation (after every round), on seeds collection never uses."""
    num_envs: int = 2
    """Parallel envs (worker processes) for collection and evaluation; 1 runs in this process."""
    seed: int = 0
    """Seed of collection episodes, the network and batch sampling."""
    run_dir: Path | None = None
    """Run directory (default runs/<task>-<method>-seed<seed>)."""
    threads: int = 2
    """torch CPU threads."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {list(METHODS)}")
        if self.student not in STUDENTS:
            raise ValueError(f"student {self.student!r}: expected one of {list(STUDENTS)}")
        for name, low, high in (("iterations", 1, 1000), ("episodes_per_iteration", 1, 10_000),
                                ("fit_steps", 0, 1_000_000), ("batch_size", 1, 65_536), ("eval_episodes", 1, 10_000),
                                ("num_envs", 1, 64), ("seed", 0, 2**31 - 1), ("threads", 1, 256),
                                ("reset_frames", 0, 1_000_000)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} = {value}: expected an integer in {low} .. {high}")
        if not 0.0 <= self.beta_decay <= 1.0:
            raise ValueError(f"beta_decay = {self.beta_decay}: expected 0 .. 1")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr = {self.lr}: expected a finite number > 0")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ValueError(f"color_jitter = {self.color_jitter}: expected 0 <= value < 1")
        if self.locate_cube and (self.student != "estimator" or "wrist" not in self.net.cameras):
            raise ValueError(f"locate_cube needs student 'estimator' and the wrist camera; got student "
                             f"{self.student!r} and cameras {list(self.net.cameras)}")
        if self.locate_cube and not 1 <= self.locate_batch <= self.batch_size:
            raise ValueError(f"locate_batch = {self.locate_batch}: expected 1 .. batch_size ({self.batch_size})")
        if self.locate_every < 1:
            raise ValueError(f"locate_every = {self.locate_every}: expected an integer >= 1")
        if not (np.isfinite(self.aux_weight) and self.aux_weight >= 0):
            raise ValueError(f"aux_weight = {self.aux_weight}: expected a finite number >= 0")

    def beta(self, iteration: int) -> float:
        """Probability that the teacher's action is executed in this round (labels always come from it)."""
        return 1.0 if self.method == "bc" or iteration == 0 else self.beta_decay**iteration

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "net": self.net.to_dict(), "run_dir": str(self.run_dir)}

    @classmethod
    def from_dict(cls, values: dict) -> DistillConfig:
        return cls(**{**values, "net": PixelNetConfig.from_dict(values["net"]), "run_dir": Path(values["run_dir"])})


def load_teacher(spec: str) -> LoadedPolicy:
    """A saved state policy; a pixel policy or a built-in name is refused with the reason."""
    policy = resolve_policy(spec).loaded
    if policy is None:
        raise ValueError(f"teacher {spec!r} is a built-in policy; distillation needs a saved state policy "
                         "(a run directory or pretrained:<task>)")
    if policy.kind != "state" or policy.env_config.obs_mode != "state":
        raise ValueError(f"teacher {spec!r} has observation mode {policy.env_config.obs_mode!r} (kind "
                         f"{policy.kind!r}); the teacher must be a state policy")
    return policy


class Distiller:
    """Owns teacher, student, dataset and logs of one distillation run; `run()` does the remaining rounds."""

    def __init__(self, config: DistillConfig, resume: bool = False):
        self.teacher = load_teacher(config.teacher)
        task = self.teacher.env_config.task
        self.config = config = dataclasses.replace(
            config, run_dir=config.run_dir or Path("runs") / f"{task}-{config.method}-seed{config.seed}")
        self.run_dir = config.run_dir
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        net = config.net
        # The student's env: the teacher's task, action mode and randomization, seen through cameras too.
        self.env_config = dataclasses.replace(self.teacher.env_config, obs_mode="state+pixels", cameras=net.cameras,
                                              image_size=net.image_size, supersample=net.supersample)
        probe = self.env_config.make()
        if self.teacher.meta["obs_dim"] != probe.observation_space["state"].shape[0]:
            raise ValueError(f"teacher {config.teacher!r} takes obs_dim {self.teacher.meta['obs_dim']}; the {task} "
                             f"env's state has {probe.observation_space['state'].shape[0]}: another observation layout")
        self.max_steps, self.action_dim = probe.max_episode_steps, probe.action_space.shape[0]
        self._build_student(probe.state_layout)
        probe.close()
        self.envs = make_vector_env(self.env_config, config.num_envs, asynchronous=config.num_envs > 1,
                                    frame_stack=net.frame_stack)
        capacity = config.iterations * (config.episodes_per_iteration * self.max_steps + config.reset_frames)
        self.data = LabelledFrames(self.envs.single_observation_space, self.action_dim, capacity)
        self.iteration = 0
        if resume:
            self._restore()
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "config.json", config.to_dict())
        self.logger = RunLogger(self.run_dir, self.iteration and self.data.size)

    def _build_student(self, state_layout: dict[str, slice]) -> None:
        """The student and what predicts the standardized task features from its images: a training-only
        linear head for an actor student (the auxiliary loss), the estimator itself for an estimator student.
        Every task feature is predicted except orientations as quaternions, which a symmetric cube (and
        q ~ -q) makes ambiguous from pixels (the yaw relative to the jaw stays)."""
        net, estimated = self.config.net, estimated_features(state_layout)
        self.aux_index = torch.tensor(estimated)
        if self.config.student == "estimator":
            teacher_actor = copy.deepcopy(self.teacher.policy.actor)
            locator = self._cube_locator(state_layout) if self.config.locate_cube else None
            self.student = EstimatorStudent(net, teacher_actor, estimated, state_template(state_layout), locator)
            self.aux_head, self.task_normalizer = None, self.student.feature_normalizer
        else:
            self.student = PixelActor(net, self.action_dim, stochastic=False)
            self.aux_head = nn.Linear(net.feature_dim, len(estimated))
            self.task_normalizer = ObsNormalizer(len(estimated))
        modules = [self.student] + ([self.aux_head] if self.aux_head else [])
        trained = [parameter for module in modules for parameter in module.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.Adam(trained, lr=self.config.lr)

    def _cube_locator(self, state_layout: dict[str, slice]) -> CubeLocator:
        task = self.env_config.task
        missing = [name for name in ("cube_pos", "cube_to_grasp") if name not in state_layout]
        if missing:
            raise ValueError(f"locate_cube: the {task} task's state has no {missing} (features {list(state_layout)})")
        return CubeLocator(TASKS[task].objects, self.config.net.image_size, state_layout["cube_pos"],
                           state_layout["cube_to_grasp"])

    def run(self) -> Path:
        config, started = self.config, time.perf_counter()
        bar = tqdm(total=config.iterations, initial=self.iteration, unit="round", desc=f"distill/{config.method}")
        while self.iteration < config.iterations:
            beta = config.beta(self.iteration)
            seeds = DAGGER_SEED + 10_000 * config.seed + self.iteration * config.episodes_per_iteration
            collected = self._rollouts(config.episodes_per_iteration, seeds, beta, record=True)
            self._first_frames(config.reset_frames, FIRST_FRAME_SEED + 100_000 * config.seed
                               + self.iteration * config.reset_frames)
            loss, aux_loss, locate_loss = self._fit(config.fit_steps)
            evaluation = self._rollouts(config.eval_episodes, EVAL_SEED, beta=0.0, record=False)
            self.iteration += 1
            step = self.data.size  # x axis: labelled observations so far (env steps collected)
            self.logger.log(step, {"success_rate": collected, "beta": beta, "loss": loss, "aux_loss": aux_loss,
                                   "locate_loss": locate_loss,
                                   "minutes": (time.perf_counter() - started) / 60}, "train")
            self.logger.log(step, {"success_rate": evaluation}, "eval")
            bar.update(1)
            bar.set_postfix(eval=f"{evaluation:.2f}", beta=f"{beta:.2f}", loss=f"{loss:.4f}", refresh=False)
            self._checkpoint()
        bar.close()
        self.envs.close()
        self.logger.close()
        plot_learning_curve(self.run_dir, f"{self.env_config.task} / {config.method} student / seed {config.seed}")
        return self.run_dir

    # -- collection ----------------------------------------------------------------------------------------
    def _rollouts(self, episodes: int, first_seed: int, beta: float, record: bool) -> float:
        """Run `episodes` episodes, num_envs at a time; returns their success rate. With `record`, every
        observation is stored with the teacher's action. Each step executes the teacher's action with
        probability beta (per env and step), the student's otherwise."""
        successes = []
        for start in range(0, episodes, self.config.num_envs):
            count = min(self.config.num_envs, episodes - start)
            successes += self._round(list(range(first_seed + start, first_seed + start + count)), beta, record)
        return float(np.mean(successes))

    def _first_frames(self, count: int, first_seed: int) -> None:
        """Record `count` scenes at their first frame, labelled with the teacher's action there."""
        num_envs = self.config.num_envs
        for start in range(0, count, num_envs):
            obs, _ = self.envs.reset(seed=list(range(first_seed + start, first_seed + start + num_envs)))
            self.data.add_batch(obs, self.teacher(obs["state"]), np.arange(num_envs) < count - start)

    def _round(self, seeds: list[int], beta: float, record: bool) -> list[bool]:
        num_envs = self.config.num_envs
        padded = seeds + [seeds[-1]] * (num_envs - len(seeds))  # spare workers repeat an episode, unrecorded
        obs, _ = self.envs.reset(seed=padded)
        self.student.reset_episode()
        student = self._student_actions
        active = np.arange(num_envs) < len(seeds)
        success = np.zeros(num_envs, dtype=bool)
        for _ in range(self.max_steps):
            teacher_action = self.teacher(obs["state"])  # the state policy acts on the whole batch at once
            action = teacher_action if beta >= 1.0 else student(obs)
            if 0.0 < beta < 1.0:
                use_teacher = self.rng.random(num_envs) < beta
                action = np.where(use_teacher[:, None], teacher_action, action)
            if record:
                self.data.add_batch(obs, teacher_action, active)
            obs, _, terminated, truncated, info = self.envs.step(action)
            done = terminated | truncated
            step_success = np.array(info["success"], dtype=bool)
            if done.any():  # those envs have already reset: their last step's info is under final_info
                step_success[done] = np.asarray(info["final_info"]["success"], dtype=bool)[done]
            success |= active & step_success
            active &= ~done  # a finished env starts another episode at once; ignore it until the round ends
            if not active.any():
                break
        return list(success[: len(seeds)])

    def _student_actions(self, obs: dict) -> np.ndarray:
        with torch.inference_mode():
            mean, _ = self.student(*actor_inputs(obs, self.config.net.cameras, torch.device("cpu")))
        return torch.tanh(mean).numpy()

    # -- fitting -------------------------------------------------------------------------------------------
    def _fit(self, steps: int) -> tuple[float, float, float]:
        """Refit the student on the whole dataset: MSE between its deterministic action and the teacher's, plus
        the auxiliary loss (and the cube detector's). Returns the last step's three losses."""
        net, pad = self.config.net, default_shift_pad(self.config.net.image_size)
        if self.iteration == 0:
            self.student.proprio_normalizer.fit(torch.as_tensor(self.data.arrays("proprio")))
            self.task_normalizer.fit(torch.as_tensor(self.data.arrays("state"))[:, self.aux_index])
        self.student.train()
        loss = aux_loss = locate_loss = torch.zeros(())
        for step in range(steps):
            obs, teacher_action = self.data.sample(self.config.batch_size, self.rng)
            tensors = observation_tensors(obs, net.cameras, torch.device("cpu"))
            jittered = color_jitter(stack_cameras(tensors, net.cameras), self.config.color_jitter)
            mean, predicted = self._forward_with_estimate(random_shift(jittered, pad), tensors["proprio"])
            loss = (torch.tanh(mean) - torch.as_tensor(teacher_action)).square().mean()
            task_features = self.task_normalizer(tensors["state"][:, self.aux_index])
            aux_loss = (predicted - task_features).square().mean()
            total = loss + self.config.aux_weight * aux_loss
            if self.config.locate_cube and step % self.config.locate_every == 0:
                locate_loss = self._locate_loss(jittered, tensors)
                total = total + locate_loss
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
        self.student.eval()
        return float(loss.detach()), float(aux_loss.detach()), float(locate_loss.detach())

    def _locate_loss(self, images: torch.Tensor, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """The cube detector's loss on the first locate_batch frames, unshifted (a shift would move the target
        pixel). Targets: the true cube projected through the wrist camera posed by the measured joints."""
        locator, count = self.student.locator, self.config.locate_batch
        cube_pos = tensors["state"][:count, locator.cube_pos].numpy()
        pixel, in_view = in_view_labels(locator.geometry, cube_pos, tensors["proprio"][:count, :6].numpy())
        predicted, in_view_logit = locator.detector(images[:count, self.student.wrist_channels])
        return detector_loss(predicted, in_view_logit, torch.as_tensor(pixel, dtype=torch.float32),
                             torch.as_tensor(in_view))

    def _forward_with_estimate(self, images: torch.Tensor, proprio: torch.Tensor):
        """The student's pre-tanh action mean and its standardized estimate of the task features."""
        if self.aux_head is None:  # estimator student: the estimate is what the teacher acts on
            estimate = self.student.estimate(images, proprio)
            mean, _ = self.student.teacher(self.student.teacher_state(estimate, proprio))
            return mean, estimate
        features = self.student.trunk(self.student.encoder(images))
        mean, _ = self.student.head_from_trunk(features, proprio)
        return mean, self.aux_head(features)

    # -- persistence ---------------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        if self.aux_head is None:
            return {"student": self.student}
        return {"student": self.student, "aux_head": self.aux_head, "task_normalizer": self.task_normalizer}

    def _meta(self) -> dict:
        return {"iteration": self.iteration, "task": self.env_config.task, "method": self.config.method,
                "student": self.config.student, "net": self.config.net.to_dict(), "tidyarm_version": __version__,
                "rng_state": self.rng.bit_generator.state}

    def _checkpoint(self) -> None:
        tensors = pack_agent_state(self._modules(), {"optimizer": self.optimizer}, {})
        save_checkpoint(self.run_dir, {**tensors, "torch_rng_state": torch.get_rng_state()}, {"dataset": self.data},
                        self._meta())
        deployed_env = dataclasses.replace(self.env_config, obs_mode="pixels")  # what a real arm provides
        export_pixel_policy(self.run_dir, self.student, deployed_env, algo=self.config.method, step=self.data.size)

    def _restore(self) -> None:
        path = find_checkpoint(self.run_dir)
        meta = read_json(path / "meta.json")
        # Checkpoints written before estimator students existed hold actor students.
        check_meta({"student": "actor", **meta}, {"task": self.env_config.task, "method": self.config.method,
                                                  "student": self.config.student,
                                                  "net": self.config.net.to_dict()}, path / "meta.json")
        tensors = load_tensors(path / "agent.safetensors")
        torch.set_rng_state(tensors.pop("torch_rng_state"))
        try:
            unpack_agent_state(tensors, self._modules(), {"optimizer": self.optimizer}, {})
        except ValueError as error:
            raise ValueError(f"{path / 'agent.safetensors'}: {error}") from error
        self.data.load(path / "dataset.npz")
        self.rng.bit_generator.state = meta["rng_state"]
        self.iteration = int(meta["iteration"])


@dataclass(frozen=True)
class DistillCommand:
    """Distill a state teacher into an image policy (`tidyarm distill --teacher RUN_DIR`), or resume a run."""

    config: Annotated[DistillConfig, tyro.conf.arg(name="")] = DistillConfig()
    resume: Path | None = None
    """Continue this distillation run from its last checkpoint (its config.json wins)."""


def distill(config: DistillConfig) -> Path:
    return Distiller(config).run()


def resume_distill(run_dir: Path) -> Path:
    config = DistillConfig.from_dict(read_json(run_dir / "config.json"))
    return Distiller(dataclasses.replace(config, run_dir=run_dir), resume=True).run()


__all__ = ["DistillCommand", "DistillConfig", "Distiller", "PixelPolicy", "distill", "resume_distill"]
