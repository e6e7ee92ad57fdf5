"""`tidyarm record`: a recording session into a LeRobot v3.0 dataset on disk, from the expert or a person.

Each finished episode is saved before the next one starts (DatasetWriter is crash-safe per episode), so a
killed session keeps everything it finished. Expert sessions keep only successful episodes and say how
many they dropped; teleoperated sessions keep what the operator keeps (keys in tidyarm/teleop/).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from tidyarm.data.record import (
    DEFAULT_IMAGE_SIZE,
    TASK_INSTRUCTIONS,
    expert_episodes,
    make_record_env,
)
from tidyarm.data.so101_features import ACTION, ROBOT_TYPE, action_from_env, features_from_env, features_spec
from tidyarm.data.video import CODECS
from tidyarm.data.writer import DatasetWriter
from tidyarm.sim.env import CAMERAS
from tidyarm.sim.tasks import TASKS
from tidyarm.teleop.base import SOURCES, Event, Teleop

RECORD_SOURCES = ("expert", *SOURCES)


@dataclass(frozen=True)
class RecordCommand:
    """Record demonstrations in the sim into a LeRobot v3.0 dataset (expert, keyboard or gamepad)."""

    task: str = "place"
    """Task name: reach, lift or place."""
    source: str = "expert"
    """Who acts: expert (scripted; keeps successful episodes), keyboard or gamepad (pip install 'tidyarm[teleop]')."""
    episodes: int = 50
    """Episodes to keep."""
    root: Path | None = None
    """Dataset directory (must not exist yet); default runs/datasets/<task>-<source>."""
    cameras: tuple[str, ...] = CAMERAS
    """Cameras stored as video (front, wrist); pass --cameras with no names for state only."""
    image_size: int = DEFAULT_IMAGE_SIZE
    """Camera image height and width in pixels (even)."""
    seed: int = 0
    """Seed of the first episode; later episodes use the following seeds."""
    randomize: bool = True
    """Domain randomization (object placement, visuals, physics) on, as in training."""
    vcodec: str = "libsvtav1"
    """Video codec: libsvtav1 (AV1, LeRobot's default) or libx264 (H.264)."""
    realtime: bool = True
    """Teleoperation only: pace steps at the control rate so a person can follow."""
    show: bool = True
    """Teleoperation only: show the front and wrist cameras in a window (pygame)."""
    resume: bool = False
    """Add episodes to the dataset already at --root (e.g. after a crash); pass --seed past the seeds it used."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid: {list(TASKS)}")
        if self.source not in RECORD_SOURCES:
            raise ValueError(f"unknown source {self.source!r}; valid: {list(RECORD_SOURCES)}")
        if self.episodes < 1:
            raise ValueError(f"episodes = {self.episodes}: expected at least 1")
        unknown = [camera for camera in self.cameras if camera not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; valid: {list(CAMERAS)}")
        if self.image_size < 16 or self.image_size % 2:
            raise ValueError(f"image_size = {self.image_size}: expected an even number of pixels >= 16")
        if self.vcodec not in CODECS:
            raise ValueError(f"vcodec = {self.vcodec!r}: expected one of {list(CODECS)}")

    @property
    def dataset_root(self) -> Path:
        return Path(self.root) if self.root else Path("runs/datasets") / f"{self.task}-{self.source}"


@dataclass
class SessionSummary:
    root: Path
    kept: int
    """Episodes saved."""
    dropped: int
    """Expert: failed episodes skipped. Teleop: episodes discarded or redone."""
    frames: int = 0
    seconds: float = 0.0
    bytes: int = 0
    next_seed: int = 0
    """The seed a further session (--resume) should start from."""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"{self.kept} episodes ({self.frames} frames) in {self.root}; {self.dropped} dropped; "
                f"{self.seconds:.1f} s ({rate:.0f} frames/s); {self.bytes / 2**20:.2f} MB "
                f"({self.bytes / max(self.kept, 1) / 2**10:.0f} KB per episode); next seed {self.next_seed}")


def record(command: RecordCommand, teleop: Teleop | None = None) -> SessionSummary:
    """Run a recording session; `teleop` overrides the device (tests pass a scripted one)."""
    root = command.dataset_root
    if root.exists() and any(root.iterdir()) and not command.resume:
        raise ValueError(f"dataset root {root} exists and is not empty; pass a new --root, or --resume")
    if teleop is None and command.source != "expert":
        from tidyarm.teleop.base import make_teleop

        teleop = make_teleop(command.source)  # before anything is written: a missing device leaves no dataset
    env = make_record_env(command.task, command.cameras, command.image_size, command.randomize)
    started = time.perf_counter()
    writer = DatasetWriter(root, env.control_hz, features_spec(env, command.cameras), robot_type=ROBOT_TYPE,
                           vcodec=command.vcodec, resume=command.resume)
    frames_before = writer.info["total_frames"]
    try:
        if teleop is None:
            summary = _record_expert(env, writer, command)
        else:
            summary = _record_teleop(env, writer, command, teleop)
    finally:
        writer.close()
        env.close()
    summary.frames = writer.info["total_frames"] - frames_before
    summary.seconds = time.perf_counter() - started
    summary.bytes = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
    return summary


def _record_expert(env, writer: DatasetWriter, command: RecordCommand) -> SessionSummary:
    instruction = TASK_INSTRUCTIONS[command.task]
    summary = SessionSummary(command.dataset_root, kept=0, dropped=0)
    max_attempts = 3 * command.episodes + 10
    with tqdm(total=command.episodes, desc=f"record {command.task} (expert)", unit="episode") as bar:
        for episode in expert_episodes(env, command.seed):
            if episode.success:
                for frame in episode.frames:
                    writer.add_frame(frame)
                writer.save_episode(instruction)
                summary.kept += 1
                bar.update(1)
            else:
                summary.dropped += 1
                bar.set_postfix(dropped=summary.dropped)
            if summary.kept == command.episodes:
                break
            if summary.kept + summary.dropped >= max_attempts:
                summary.notes.append(f"stopped after {max_attempts} attempts: the expert failed too often")
                break
    summary.next_seed = command.seed + summary.kept + summary.dropped
    return summary


def _record_teleop(env, writer: DatasetWriter, command: RecordCommand, teleop: Teleop) -> SessionSummary:
    """Episodes from a person (or a scripted device): keep / discard / redo / stop from the device."""
    instruction = TASK_INSTRUCTIONS[command.task]
    summary = SessionSummary(command.dataset_root, kept=0, dropped=0)
    if hasattr(teleop, "attach"):
        teleop.attach(env)
    window = _camera_window(env, command) if command.show else None
    print(getattr(teleop, "help", ""))
    seed, period = command.seed, 1.0 / env.control_hz
    try:
        with tqdm(total=command.episodes, desc=f"record {command.task} ({command.source})", unit="episode") as bar:
            while summary.kept < command.episodes:
                event, success = _teleop_episode(env, writer, teleop, seed, period if command.realtime else 0.0,
                                                 window, bar)
                if event is Event.KEEP and writer.episode_frames:
                    writer.save_episode(instruction)
                    summary.kept += 1
                    seed += 1
                    bar.update(1)
                else:
                    writer.discard_episode()
                    summary.dropped += event is not Event.STOP
                    seed += event is Event.DISCARD
                bar.set_postfix(last=f"{event.value}{' (success)' if success else ''}", seed=seed)
                if event is Event.STOP:
                    summary.notes.append("stopped by the operator")
                    break
    finally:
        teleop.disconnect()
        if window is not None:
            window.close()
    summary.next_seed = seed
    return summary


def _teleop_episode(env, writer: DatasetWriter, teleop: Teleop, seed: int, period: float, window,
                    bar) -> tuple[Event, bool]:
    """One episode; returns the event that ended it (KEEP at the time limit) and whether it succeeded."""
    obs, _ = env.reset(seed=seed)
    teleop.reset()
    success = False
    for step in range(env.max_episode_steps):
        tick = time.perf_counter()
        command = teleop.read(obs)
        if command.event is not None:
            return command.event, success
        frame = features_from_env(env, obs)
        obs, _, terminated, truncated, info = env.step(command.action)
        frame[ACTION] = action_from_env(env)
        writer.add_frame(frame)
        success |= bool(info["success"])
        if window is not None:
            window.show()
        if step % 10 == 0:
            bar.set_postfix(seed=seed, step=step, success=success)
        if terminated or truncated:
            break
        time.sleep(max(0.0, period - (time.perf_counter() - tick)))
    return Event.KEEP, success


def _camera_window(env, command: RecordCommand):
    from tidyarm.teleop.display import CameraWindow

    return CameraWindow(env, title=f"tidyarm record: {command.task} ({command.source})")
