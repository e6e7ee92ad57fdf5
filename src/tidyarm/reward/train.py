"""Train the reward classifier on labelled episodes; precision, recall and F1 on held-out episodes.

Episodes, never frames, are split into train / validation / test (frames of one episode are near copies of
each other, so a frame split would grade the classifier on what it trained on). Batches are class-balanced
(half success frames, half not: successes are the minority, and hard negatives matter as much), images get
DrQ's random shift and colour jitter, and the decision threshold is the one with the best F1 on validation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tidyarm.data.episodes import Episodes
from tidyarm.data.so101_features import image_key
from tidyarm.reward.classifier import ClassifierConfig, RewardClassifier
from tidyarm.reward.labels import image_labels
from tidyarm.rl.encoder import color_jitter, default_shift_pad, random_shift


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of the reward classifier."""

    steps: int = 1500
    """Gradient steps (each one class-balanced batch)."""
    batch_size: int = 64
    """Frames per batch, half of them success frames."""
    lr: float = 3e-4
    """Adam learning rate."""
    jitter: float = 0.2
    """Colour-jitter strength (brightness, contrast, saturation factors in 1 +- jitter)."""
    shift: int | None = None
    """Random-shift padding in px (default: DrQ's 4 px at 84 px, scaled to the image size)."""
    eval_every: int = 250
    """Score validation every this many steps and keep the best weights (by validation F1)."""
    max_minutes: float = 9.0
    """Stop early after this much training wall time (the brief: under 10 minutes on a CPU)."""
    seed: int = 0
    """Seed of the weights, batches and augmentation."""
    threads: int = 1
    """torch CPU threads."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.eval_every < 1:
            raise ValueError(f"steps = {self.steps}, batch_size = {self.batch_size}, eval_every = "
                             f"{self.eval_every}: expected steps >= 1, batch_size >= 2, eval_every >= 1")
        if not self.lr > 0 or not 0 <= self.jitter < 1 or self.threads < 1:
            raise ValueError(f"lr = {self.lr}, jitter = {self.jitter}, threads = {self.threads}: expected "
                             "lr > 0, 0 <= jitter < 1, threads >= 1")


@dataclass
class FrameSet:
    """Frames ready for the classifier: images at its size, a label and an episode id per frame."""

    images: dict[str, np.ndarray]
    """camera -> uint8 (N, S, S, 3)."""
    labels: np.ndarray
    """(N,) float32, 1 where the image shows success."""
    episode: np.ndarray
    """(N,) int64 episode_index of each frame."""

    def subset(self, episode_ids) -> FrameSet:
        rows = np.isin(self.episode, np.asarray(list(episode_ids)))
        return FrameSet({key: value[rows] for key, value in self.images.items()}, self.labels[rows],
                        self.episode[rows])


def frame_set(episodes: Episodes, cameras: tuple[str, ...], image_size: int) -> FrameSet:
    """Images (area-averaged to image_size) and image labels (labels.image_labels) of labelled episodes."""
    images = {}
    for camera in cameras:
        key = image_key(camera)
        if key not in episodes.frames:
            raise ValueError(f"the episodes have no {key!r} frames (columns {sorted(episodes.frames)})")
        frames = episodes.frames[key]
        factor = frames.shape[1] // image_size
        if frames.shape[1] != frames.shape[2] or factor < 1 or frames.shape[1] % image_size:
            raise ValueError(f"{key} frames are {frames.shape[1]}x{frames.shape[2]}; expected square frames, "
                             f"a multiple of image_size {image_size}")
        if factor > 1:
            blocks = frames.reshape(len(frames), image_size, factor, image_size, factor, 3)
            frames = np.round(blocks.mean(axis=(2, 4), dtype=np.float32)).astype(np.uint8)
        images[camera] = frames
    return FrameSet(images, image_labels(episodes), np.asarray(episodes.frames["episode_index"], dtype=np.int64))


def split_episodes(episode_ids, groups=None, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> tuple[list, list, list]:
    """Disjoint train / validation / test episode ids. With `groups` (e.g. the behaviour of each episode)
    every group is split in the same proportions, so each split sees every kind of failure."""
    if len(fractions) != 3 or min(fractions) < 0 or not abs(sum(fractions) - 1) < 1e-6:
        raise ValueError(f"fractions {fractions}: expected three non-negative shares summing to 1")
    episode_ids = list(episode_ids)
    groups = ["all"] * len(episode_ids) if groups is None else list(groups)
    if len(groups) != len(episode_ids):
        raise ValueError(f"{len(groups)} groups for {len(episode_ids)} episodes: expected one each")
    rng = np.random.default_rng(seed)
    splits: tuple[list, list, list] = ([], [], [])
    for group in dict.fromkeys(groups):
        members = [e for e, g in zip(episode_ids, groups, strict=True) if g == group]
        members = [members[i] for i in rng.permutation(len(members))]
        n_val, n_test = round(fractions[1] * len(members)), round(fractions[2] * len(members))
        splits[1].extend(members[:n_val])
        splits[2].extend(members[n_val:n_val + n_test])
        splits[0].extend(members[n_val + n_test:])
    for split, share in ((splits[1], fractions[1]), (splits[2], fractions[2])):
        if share > 0 and not split and len(splits[0]) >= 2:  # small groups all rounded to 0: take one
            split.append(splits[0].pop())
    return splits


def metrics(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Precision, recall, F1, accuracy and the confusion matrix at a threshold."""
    predicted, actual = probabilities >= threshold, labels > 0.5
    tp, fp = int(np.sum(predicted & actual)), int(np.sum(predicted & ~actual))
    fn, tn = int(np.sum(~predicted & actual)), int(np.sum(~predicted & ~actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": (tp + tn) / max(1, len(labels)),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "threshold": float(threshold), "frames": int(len(labels))}


def best_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The threshold in 0.05 .. 0.95 with the best F1 (ties: the one nearest 0.5)."""
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    scores = [(metrics(probabilities, labels, t)["f1"], -abs(t - 0.5), t) for t in grid]
    return float(max(scores)[2])


def predict(classifier: RewardClassifier, frames: FrameSet, batch: int = 512) -> np.ndarray:
    """P(success) of every frame of a FrameSet, in order."""
    out = []
    for start in range(0, len(frames.labels), batch):
        chunk = {camera: images[start:start + batch] for camera, images in frames.images.items()}
        out.append(classifier.probability(chunk))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _batch(frames: FrameSet, positives: np.ndarray, negatives: np.ndarray, size: int,
           rng: np.random.Generator) -> np.ndarray:
    half = size // 2
    return np.concatenate([rng.choice(positives, half), rng.choice(negatives, size - half)])


def train_classifier(train: FrameSet, validation: FrameSet, config: ClassifierConfig,
                     train_config: TrainConfig = TrainConfig(), log=print) -> tuple[RewardClassifier, dict]:
    """Fit a classifier; returns it (best validation weights, threshold set) and a summary."""
    positives, negatives = np.flatnonzero(train.labels > 0.5), np.flatnonzero(train.labels <= 0.5)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError(f"training frames hold {len(positives)} success and {len(negatives)} other frames; "
                         "expected some of each (record more or longer episodes)")
    torch.set_num_threads(train_config.threads)
    torch.manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    classifier = RewardClassifier(config)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=train_config.lr)
    pad = default_shift_pad(config.image_size) if train_config.shift is None else train_config.shift
    labels = torch.as_tensor(train.labels)
    best = {"f1": -1.0}
    start, history = time.perf_counter(), []
    for step in range(1, train_config.steps + 1):
        rows = _batch(train, positives, negatives, train_config.batch_size, rng)
        images = classifier.prepare({camera: frames[rows] for camera, frames in train.images.items()})
        images = color_jitter(random_shift(images, pad), train_config.jitter)
        loss = F.binary_cross_entropy_with_logits(classifier(images), labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        out_of_time = elapsed > 60 * train_config.max_minutes
        if step % train_config.eval_every == 0 or step == train_config.steps or out_of_time:
            probabilities = predict(classifier, validation)
            threshold = best_threshold(probabilities, validation.labels)
            scores = metrics(probabilities, validation.labels, threshold)
            history.append({"step": step, "loss": loss.item(), "seconds": elapsed, **scores})
            log(f"step {step}: loss {loss.item():.3f}, validation F1 {scores['f1']:.3f} at threshold "
                f"{threshold:.2f} ({elapsed:.0f} s)")
            if scores["f1"] > best["f1"]:
                best = {**scores, "step": step,
                        "state": {k: v.clone() for k, v in classifier.state_dict().items()}}
        if out_of_time:
            log(f"stopped at step {step}: max_minutes {train_config.max_minutes} reached")
            break
    classifier.load_state_dict(best.pop("state"))
    classifier.threshold = best["threshold"]
    classifier.eval()
    summary = {"train_seconds": time.perf_counter() - start, "steps": step, "best_step": best["step"],
               "validation": best, "history": history, "threads": train_config.threads,
               "train_frames": int(len(train.labels)), "train_positives": int(len(positives))}
    return classifier, summary


def save_frames(frames: FrameSet, path: Path) -> None:
    """Cache a FrameSet as one npz (for re-running training without re-recording)."""
    np.savez(path, labels=frames.labels, episode=frames.episode,
             **{f"image_{camera}": images for camera, images in frames.images.items()})


def load_frames(path: Path) -> FrameSet:
    data = np.load(path)
    images = {key[len("image_"):]: data[key] for key in data.files if key.startswith("image_")}
    return FrameSet(images, data["labels"], data["episode"])
