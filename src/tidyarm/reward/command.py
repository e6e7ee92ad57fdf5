"""`tidyarm train-reward`: record labelled episodes (or read a labelled dataset), train, test, save.

The classifier directory holds classifier.safetensors + classifier.json (config, threshold, the split's
episode ids, validation and test metrics, timings), ready for `ClassifierReward`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tidyarm.reward.classifier import ClassifierConfig, save_classifier
from tidyarm.reward.labels import BEHAVIOURS, record_labelled, write_labelled
from tidyarm.reward.train import TrainConfig, frame_set, metrics, predict, split_episodes, train_classifier


@dataclass(frozen=True)
class TrainRewardCommand:
    """Train a success classifier from camera frames (the reward for HIL-SERL) and report P/R/F1 on held-out
    episodes."""

    task: str = "lift"
    """Task name: reach, lift or place."""
    episodes: int = 200
    """Episodes to record (a mix of the expert and failing behaviours); ignored with --dataset."""
    dataset: Path | None = None
    """Read a labelled LeRobot dataset (with next.reward) instead of recording in the sim."""
    save_dataset: Path | None = None
    """Also write the recorded labelled episodes here as a LeRobot v3.0 dataset."""
    out: Path = Path("runs/reward-lift")
    """Where the classifier (classifier.safetensors + classifier.json) is written."""
    cameras: tuple[str, ...] = ("front", "wrist")
    """Cameras the classifier reads."""
    image_size: int = 32
    """Classifier input size (px)."""
    record_size: int = 64
    """Camera size (px) of recorded frames, a multiple of image_size (rendered at 2x and area-averaged)."""
    randomize: bool = True
    """Domain randomization (lights, colours, camera poses, physics) while recording."""
    seed: int = 0
    """Seed of the first recorded episode and of the split."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation."""

    def __post_init__(self) -> None:
        if self.record_size % self.image_size:
            raise ValueError(f"record_size = {self.record_size}: expected a multiple of image_size {self.image_size}")
        if self.episodes < 3:
            raise ValueError(f"episodes = {self.episodes}: expected at least 3 (train, validation, test)")


def run_train_reward(command: TrainRewardCommand, log=print) -> dict:
    """Record or read labelled episodes, split them by episode, train, score on test, save; a summary."""
    config = ClassifierConfig(command.task, tuple(command.cameras), command.image_size)
    start = time.perf_counter()
    if command.dataset is not None:
        from tidyarm.data.reader import read_dataset

        episodes = read_dataset(command.dataset, image_size=command.record_size)
        behaviours = ["recorded"] * episodes.num_episodes
    else:
        labelled = record_labelled(command.task, command.episodes, command.seed, command.cameras,
                                   command.record_size, supersample=2, randomize=command.randomize)
        episodes, behaviours = labelled.episodes, labelled.behaviours
        if command.save_dataset is not None:
            write_labelled(episodes, command.save_dataset)
    record_seconds = time.perf_counter() - start
    frames = frame_set(episodes, config.cameras, config.image_size)
    train_ids, val_ids, test_ids = split_episodes(episodes.episode_ids, behaviours, seed=command.seed)
    log(f"{episodes.num_episodes} episodes, {len(frames.labels)} frames ({int(frames.labels.sum())} success) "
        f"in {record_seconds:.0f} s; split {len(train_ids)}/{len(val_ids)}/{len(test_ids)} episodes")
    classifier, summary = train_classifier(frames.subset(train_ids), frames.subset(val_ids), config,
                                           command.train, log)
    test = frames.subset(test_ids)
    test_metrics = metrics(predict(classifier, test), test.labels, classifier.threshold)
    by_behaviour = {}
    for name in [b for b in BEHAVIOURS if b in behaviours]:
        ids = [e for e, b in zip(episodes.episode_ids, behaviours, strict=True) if b == name and e in test_ids]
        subset = test.subset(ids)
        if len(subset.labels):
            by_behaviour[name] = metrics(predict(classifier, subset), subset.labels, classifier.threshold)
    result = {"metrics": {"validation": summary["validation"], "test": test_metrics, "test_by_behaviour":
                          by_behaviour},
              "split": {"train": train_ids, "validation": val_ids, "test": test_ids},
              "record_seconds": record_seconds, "train_seconds": summary["train_seconds"],
              "steps": summary["steps"], "best_step": summary["best_step"], "threads": summary["threads"],
              "history": summary["history"], "episodes": episodes.num_episodes,
              "frames": int(len(frames.labels)), "positives": int(frames.labels.sum()),
              "randomize": command.randomize, "record_size": command.record_size}
    save_classifier(classifier, command.out, result)
    log(f"test: precision {test_metrics['precision']:.3f}, recall {test_metrics['recall']:.3f}, F1 "
        f"{test_metrics['f1']:.3f} (tp {test_metrics['tp']}, fp {test_metrics['fp']}, fn {test_metrics['fn']}, "
        f"tn {test_metrics['tn']}); trained {summary['train_seconds']:.0f} s; saved {command.out}")
    return {**result, "classifier": classifier, "positive_share": float(np.mean(frames.labels))}
