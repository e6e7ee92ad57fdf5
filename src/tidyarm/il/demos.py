"""Where an imitation run's demonstrations come from: a LeRobot dataset on disk or scripted expert episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tidyarm.data.episodes import Episodes
from tidyarm.il.features import InputSpec
from tidyarm.il.normalize import compute_stats
from tidyarm.sim.tasks import TASKS

EXPERT_PREFIX = "expert:"


def load_demos(dataset: str, inputs: tuple[str, ...], episodes: int | None = None, task: str | None = None,
               image_size: int = 64, randomize: bool = True, noise: float = 0.0,
               misses: float = 0.0) -> tuple[Episodes, str]:
    """(the first `episodes` episodes of the dataset, the sim task to evaluate on). `noise` and `misses`: DART
    noise and the share of episodes opening with a missed grasp, for expert: recordings (data.record)."""
    if dataset.startswith(EXPERT_PREFIX):
        demos, task = _record(dataset, inputs, image_size, randomize, task, noise, misses)
    elif noise or misses:
        raise ValueError(f"demo noise = {noise}, misses = {misses}: these apply to expert: recordings only, "
                         f"not to dataset {dataset!r}")
    else:
        from tidyarm.data.reader import read_dataset

        demos = read_dataset(Path(dataset))
        task = task or _task_of(demos, dataset)
    if task not in TASKS:
        raise ValueError(f"task {task!r}: expected one of {list(TASKS)}")
    if episodes is not None:
        if episodes > demos.num_episodes:
            raise ValueError(f"episodes = {episodes} but {dataset} holds {demos.num_episodes}")
        demos = demos.select(demos.episode_ids[:episodes])
    return demos, task


def _record(dataset: str, inputs: tuple[str, ...], image_size: int, randomize: bool,
            task: str | None, noise: float, misses: float) -> tuple[Episodes, str]:
    from tidyarm.data.record import record_expert_episodes

    parts = dataset.split(":")
    if len(parts) != 3 or parts[1] not in TASKS or not parts[2].isdigit() or int(parts[2]) < 1:
        raise ValueError(f"dataset {dataset!r}: expected expert:<task>:<episodes> with task in {list(TASKS)} "
                         "and a positive number of episodes")
    if task and task != parts[1]:
        raise ValueError(f"task {task!r} differs from the expert dataset's task {parts[1]!r}")
    cameras = tuple(name.removeprefix("observation.images.") for name in inputs
                    if name.startswith("observation.images."))
    demos = record_expert_episodes(parts[1], int(parts[2]), seed=0, cameras=cameras, image_size=image_size,
                                   randomize=randomize, noise=noise, misses=misses)
    return demos, parts[1]


def _task_of(demos: Episodes, dataset: str) -> str:
    """The sim task whose recording instruction the dataset carries (pass --task for other datasets)."""
    from tidyarm.data.record import TASK_INSTRUCTIONS

    by_instruction = {text: name for name, text in TASK_INSTRUCTIONS.items()}
    matches = {by_instruction[text] for text in demos.tasks if text in by_instruction}
    if len(matches) != 1:
        raise ValueError(f"{dataset}: cannot tell the sim task from its instructions {demos.tasks}; pass --task")
    return matches.pop()


def dataset_stats(demos: Episodes, spec: InputSpec) -> dict[str, dict]:
    """Normalization stats of the vector inputs and the action, over every frame of the training episodes."""
    names = [name for name, _ in spec.vectors] + ["action"]
    return {name: compute_stats(np.asarray(demos.frames[name])) for name in names}
