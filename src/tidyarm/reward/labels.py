"""Success labels for the reward classifier: recorded in the sim, or marked by a person.

Conventions (LeRobot's HIL-SERL datasets): `next.reward` (float32, shape (1,)) is 1 when the step taken at
that frame led to a success state, `next.done` (bool, shape (1,)) marks the episode's last frame. The image
that shows the state a step led to is the next frame's, so the classifier learns frame t's image against
next.reward[t-1] (`image_labels`), frame 0 counting as no success.

What counts as success is judged per frame, from what the frame shows, and can be undone:
- lift: the cube is held in both jaws with its underside at least the task's lift height above the table.
  The task's own predicate also asks for a one-second hold; a single image cannot see time, so the hold
  belongs to the wrapper (`ClassifierReward(success_frames=k)`), not to the label.
- place and reach: the task's own per-step predicate (cube resting in the bowl, untouched; tool on target).
A dropped cube therefore turns the label back to 0, which is what a person watching would say too.

Episodes run to the time limit (the env's terminate_on_success stays False), so the frames after a success
are recorded and labelled: the positives a classifier needs.

Negatives come from behaviours that fail in realistic ways (`BEHAVIOURS`): the expert with action noise,
the expert opening the jaw mid-lift (cube dropped), the expert lifting to below the success height, random
actions and a still arm, beside the expert's own pre-success frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tidyarm.data.episodes import Episodes, episodes_from_frames
from tidyarm.data.record import TASK_INSTRUCTIONS, record_episode
from tidyarm.data.so101_features import features_spec
from tidyarm.sim.env import So101Env
from tidyarm.sim.experts import PickExpert, make_expert
from tidyarm.sim.randomize import Randomization
from tidyarm.sim.scene import TABLE_TOP

REWARD, DONE = "next.reward", "next.done"
LABEL_FEATURES = {REWARD: {"dtype": "float32", "shape": [1], "names": None},
                  DONE: {"dtype": "bool", "shape": [1], "names": None}}
BEHAVIOURS = ("expert", "noisy", "drop", "low", "random", "still")
# Default share of each behaviour among recorded episodes: half experts, so positives (~40% of their
# frames) and the hard negatives (drop, low) are both plentiful.
DEFAULT_MIX = {"expert": 0.4, "noisy": 0.15, "drop": 0.15, "low": 0.15, "random": 0.1, "still": 0.05}


def success_now(env: So101Env) -> bool:
    """Whether the scene shows the task done right now (see the module docstring); reads simulator state."""
    env = env.unwrapped
    task, data = env.task, env.data
    if env.task_name == "lift":  # lift's score() counts hold steps, so it must not be called twice a step
        return bool(task.grasp_terms(data)[1] and task.height(data) >= task.lift_height)
    return bool(task.score(data).success)  # place's and reach's scores keep no state between calls


class _NoisyExpert:
    """The expert with Gaussian action noise: fumbled grasps and wobbly lifts."""

    def __init__(self, env: So101Env, rng: np.random.Generator, scale: float = 0.6):
        self.expert, self.rng, self.scale = make_expert(env), rng, scale

    def reset(self) -> None:
        self.expert.reset()

    def __call__(self, obs=None) -> np.ndarray:
        action = self.expert(obs)
        return np.clip(action + self.rng.normal(0.0, self.scale, action.shape), -1, 1).astype(np.float32)


class _DroppingExpert:
    """The expert that opens its jaw once the cube is up a random height (0-7 cm): a success undone, or
    never reached."""

    def __init__(self, env: So101Env, rng: np.random.Generator):
        self.env, self.expert, self.rng = env, make_expert(env), rng

    def reset(self) -> None:
        self.expert.reset()
        self.release_height = self.rng.uniform(0.0, 0.07)
        self.released = False

    def __call__(self, obs=None) -> np.ndarray:
        task, data = self.env.task, self.env.data
        height = float(task.cube_pos(data)[2] - task.cube_half - TABLE_TOP)
        self.released |= bool(task.grasp_terms(data)[1] and height >= self.release_height)
        action = self.expert(obs)
        if self.released:
            action = action.copy()
            action[:3], action[-1] = 0.0, 1.0  # stop and open
        return action


class _LowLiftExpert(PickExpert):
    """Lift only: grasps as the expert does but holds the cube 1-4 cm up, below the success height."""

    def __init__(self, env: So101Env, rng: np.random.Generator):
        self.rng = rng
        super().__init__(env)

    def reset(self) -> None:
        super().reset()
        # Tool height above the table; the cube's underside ends about 1.3 cm lower (measured).
        self.lift_to = self.rng.uniform(0.025, 0.055)


def make_behaviour(name: str, env: So101Env, rng: np.random.Generator) -> Callable:
    """An `act(obs) -> action` callable (with `reset()`) for the env's `ee` action mode."""
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {name!r}; valid: {list(BEHAVIOURS)}")
    if env.action_mode != "ee":
        raise ValueError(f"behaviours act in the 'ee' action mode; the env uses {env.action_mode!r}")
    low, high = env.action_space.low, env.action_space.high
    if name == "expert":
        return make_expert(env)
    if name == "noisy":
        return _NoisyExpert(env, rng)
    if name == "drop":
        return _DroppingExpert(env, rng)
    if name == "low":
        return _LowLiftExpert(env, rng) if env.task_name in ("lift", "place") else make_expert(env)
    if name == "random":
        return lambda obs=None: rng.uniform(low, high).astype(np.float32)
    return lambda obs=None: np.zeros(env.action_space.shape, dtype=np.float32)  # still


def behaviour_schedule(episodes: int, mix: dict[str, float] | None = None) -> list[str]:
    """One behaviour per episode, in proportion to `mix`, interleaved so any prefix is mixed too."""
    mix = DEFAULT_MIX if mix is None else mix
    unknown = [name for name in mix if name not in BEHAVIOURS]
    if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"behaviour mix {mix}: expected non-negative shares of {list(BEHAVIOURS)}, not all 0")
    total = sum(mix.values())
    names, shares = list(mix), np.array(list(mix.values())) / total
    counts, schedule = np.zeros(len(names)), []
    for index in range(episodes):  # largest deficit first: deterministic, proportional at every prefix
        name = int(np.argmax(shares * (index + 1) - counts))
        counts[name] += 1
        schedule.append(names[name])
    return schedule


@dataclass
class LabelledEpisodes:
    """Recorded episodes with per-frame success labels, and who produced each episode."""

    episodes: Episodes
    """LeRobot features plus next.reward and next.done; episode_index 0, 1, ..."""
    behaviours: list[str]
    """Behaviour name per episode."""
    seeds: list[int]
    """Env seed per episode."""


def make_label_env(task: str, cameras: Sequence[str], image_size: int, supersample: int,
                   randomize: bool) -> So101Env:
    """The env labelled episodes are recorded in: pixels (what a robot has), ee actions, no early stop."""
    randomization = Randomization() if randomize else Randomization.off()
    return So101Env(task, obs_mode="pixels", action_mode="ee", image_size=image_size, supersample=supersample,
                    cameras=tuple(cameras), randomization=randomization, terminate_on_success=False)


def record_labelled(task: str, episodes: int, seed: int = 0, cameras: Sequence[str] = ("front", "wrist"),
                    image_size: int = 64, supersample: int = 2, randomize: bool = True,
                    mix: dict[str, float] | None = None, progress: Callable[[int], None] | None = None
                    ) -> LabelledEpisodes:
    """Record `episodes` episodes (seeds seed, seed+1, ...) of a behaviour mix, labelling every frame."""
    if episodes < 1:
        raise ValueError(f"episodes = {episodes}: expected at least 1")
    env = make_label_env(task, cameras, image_size, supersample, randomize)
    rng = np.random.default_rng(seed)
    schedule = behaviour_schedule(episodes, mix)
    recorded, seeds = [], []
    for index, name in enumerate(schedule):
        labels: list[bool] = []

        def label_step(step: int, info: dict, labels: list[bool] = labels) -> bool:
            labels.append(success_now(env))  # the state this step led to; never ends the episode early
            return False

        episode = record_episode(env, make_behaviour(name, env, rng), seed + index, on_step=label_step)
        for frame, label in zip(episode.frames, labels, strict=True):
            frame[REWARD] = np.array([float(label)], dtype=np.float32)
            frame[DONE] = np.array([False])
        episode.frames[-1][DONE] = np.array([True])
        recorded.append(episode.frames)
        seeds.append(seed + index)
        if progress:
            progress(index + 1)
    features = {**features_spec(env, tuple(cameras)), **LABEL_FEATURES}
    instruction = TASK_INSTRUCTIONS.get(task, task)
    result = episodes_from_frames(env.control_hz, features, recorded, [instruction] * len(recorded))
    env.close()
    return LabelledEpisodes(result, schedule, seeds)


def reward_from_marks(length: int, marks: Sequence[tuple[int, int]]) -> np.ndarray:
    """next.reward (length, 1) from a person's marks: [start, stop) frame ranges whose images show success.

    Frame t's next.reward describes the state frame t+1 shows, so a mark on frames [a, b) sets
    next.reward[a-1 .. b-2]; `image_labels` turns it back into exactly the marked frames (frame 0 cannot
    be marked: nothing before it led there).
    """
    reward = np.zeros((length, 1), dtype=np.float32)
    for start, stop in marks:
        if not 1 <= start < stop <= length:
            raise ValueError(f"success mark ({start}, {stop}): expected 1 <= start < stop <= {length} "
                             "(frame ranges [start, stop) of this episode)")
        reward[start - 1:stop - 1] = 1.0
    return reward


def label_from_marks(episodes: Episodes, marks: dict[int, Sequence[tuple[int, int]]]) -> Episodes:
    """A copy of `episodes` with next.reward / next.done from per-episode marks {episode_index: [(a, b)]}
    (unmarked episodes are all negative): the path for recordings a person labels, e.g. on a real arm."""
    unknown = sorted(set(marks) - set(episodes.episode_ids))
    if unknown:
        raise ValueError(f"marks for episode(s) {unknown}, which are not in the dataset "
                         f"(episodes {episodes.episode_ids[:5]}...)")
    reward = np.zeros((episodes.num_frames, 1), dtype=np.float32)
    done = np.zeros((episodes.num_frames, 1), dtype=bool)
    for episode_id, (start, stop) in zip(episodes.episode_ids, episodes.episode_bounds(), strict=True):
        reward[start:stop] = reward_from_marks(stop - start, marks.get(episode_id, ()))
        done[stop - 1] = True
    frames = {**episodes.frames, REWARD: reward, DONE: done}
    return Episodes(episodes.fps, {**episodes.features, **LABEL_FEATURES}, frames, list(episodes.tasks))


def image_labels(episodes: Episodes) -> np.ndarray:
    """(N,) float32: 1 where frame t's image shows success, i.e. next.reward of the frame before it."""
    if REWARD not in episodes.frames:
        raise ValueError(f"the episodes carry no {REWARD!r} column; label them first (record_labelled, "
                         f"label_from_marks); columns: {sorted(episodes.frames)}")
    reward = np.asarray(episodes.frames[REWARD], dtype=np.float32).reshape(-1)
    labels = np.zeros_like(reward)
    for start, stop in episodes.episode_bounds():
        labels[start + 1:stop] = reward[start:stop - 1] > 0.5
    return labels


def write_labelled(episodes: Episodes, root, vcodec: str = "libsvtav1") -> None:
    """Write labelled episodes as a LeRobot v3.0 dataset (next.reward / next.done included)."""
    from tidyarm.data.writer import DatasetWriter  # lazy: PyAV is only needed when writing

    with DatasetWriter(root, episodes.fps, episodes.features, vcodec=vcodec) as writer:
        for start, stop in episodes.episode_bounds():
            for row in range(start, stop):
                writer.add_frame({name: episodes.frames[name][row] for name in episodes.features})
            writer.save_episode(episodes.tasks[int(episodes.frames["task_index"][start])])
