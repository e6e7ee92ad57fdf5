"""Reward classifier: precision, recall and F1 on held-out episodes, training time, and F1 against the number
of training episodes and the cameras used.

Records `--episodes` labelled episodes once (reward/labels.py: the expert, noisy, dropping and low-lifting
experts, random and still arms; randomization on), caches them as an npz, splits them by episode
(stratified by behaviour) into train / validation / test, then for each camera set and each training-set
size trains a classifier (one CPU thread) and scores the fixed test episodes at the threshold chosen on
validation. train_s is optimizer wall time with validation passes included, recording excluded; load is the
1-minute load average when the cell finished (the machine is shared).

Run:
  .venv/bin/python bench/reward_classifier.py --task lift --episodes 200
  .venv/bin/python bench/reward_classifier.py --task lift --cameras front,wrist front wrist --train-episodes 20 60 140
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

from tidyarm.reward.classifier import ClassifierConfig, save_classifier  # noqa: E402
from tidyarm.reward.labels import record_labelled  # noqa: E402
from tidyarm.reward.train import (  # noqa: E402
    FrameSet,
    TrainConfig,
    frame_set,
    load_frames,
    metrics,
    predict,
    save_frames,
    split_episodes,
    train_classifier,
)


def labelled_frames(args: argparse.Namespace) -> tuple[FrameSet, list[str]]:
    """The recorded frames (64 px, both cameras) and behaviour per episode, from the cache when present."""
    cache = args.cache / f"{args.task}-{args.episodes}ep-seed{args.seed}.npz"
    if cache.is_file():
        frames = load_frames(cache)
        behaviours = np.load(cache.with_suffix(".behaviours.npy")).tolist()
        return frames, behaviours
    start = time.perf_counter()
    labelled = record_labelled(args.task, args.episodes, args.seed, ("front", "wrist"), args.record_size,
                               supersample=2, randomize=True)
    print(f"recorded {args.episodes} episodes in {time.perf_counter() - start:.0f} s")
    frames = frame_set(labelled.episodes, ("front", "wrist"), args.record_size)
    args.cache.mkdir(parents=True, exist_ok=True)
    save_frames(frames, cache)
    np.save(cache.with_suffix(".behaviours.npy"), np.array(labelled.behaviours))
    return frames, labelled.behaviours


def downsample(frames: FrameSet, cameras: tuple[str, ...], size: int) -> FrameSet:
    images = {}
    for camera in cameras:
        image = frames.images[camera]
        factor = image.shape[1] // size
        blocks = image.reshape(len(image), size, factor, size, factor, 3).mean(axis=(2, 4), dtype=np.float32)
        images[camera] = np.round(blocks).astype(np.uint8)
    return FrameSet(images, frames.labels, frames.episode)


def errors_by_behaviour(probabilities: np.ndarray, test: FrameSet, threshold: float, behaviours: list[str]) -> str:
    """'behaviour:fp/fn' for each behaviour with errors among the test frames: which failures fool it."""
    predicted, actual = probabilities >= threshold, test.labels > 0.5
    parts = []
    for name in dict.fromkeys(behaviours):
        rows = np.isin(test.episode, [e for e, b in enumerate(behaviours) if b == name])
        fp, fn = int(np.sum(predicted & ~actual & rows)), int(np.sum(~predicted & actual & rows))
        if fp or fn:
            parts.append(f"{name}:{fp}/{fn}")
    return " ".join(parts)


def run_cell(frames: FrameSet, split: tuple[list, list, list], cameras: tuple[str, ...], train_episodes: int,
             behaviours: list[str], args: argparse.Namespace) -> tuple[dict, object]:
    train_ids, val_ids, test_ids = split
    rng = np.random.default_rng(args.seed)
    chosen = [train_ids[i] for i in np.sort(rng.permutation(len(train_ids))[:train_episodes])]
    config = ClassifierConfig(args.task, cameras, args.image_size)
    train_config = dataclasses.replace(TrainConfig(), steps=args.steps, seed=args.seed)
    small = downsample(frames, cameras, args.image_size)
    classifier, summary = train_classifier(small.subset(chosen), small.subset(val_ids), config, train_config,
                                           log=lambda message: None)
    test = small.subset(test_ids)
    probabilities = predict(classifier, test)
    scores = metrics(probabilities, test.labels, classifier.threshold)
    row = {"task": args.task, "cameras": "+".join(cameras), "train_episodes": len(chosen),
           "test_episodes": len(test_ids), "precision": scores["precision"], "recall": scores["recall"],
           "f1": scores["f1"], "tp": scores["tp"], "fp": scores["fp"], "fn": scores["fn"], "tn": scores["tn"],
           "threshold": classifier.threshold, "train_s": summary["train_seconds"], "steps": summary["steps"],
           "best_step": summary["best_step"], "load": os.getloadavg()[0], "split_seed": args.split_seed,
           "fp/fn by behaviour": errors_by_behaviour(probabilities, test, classifier.threshold, behaviours)}
    return row, classifier


def rollout_check(classifier, args: argparse.Namespace) -> list[dict]:
    """Episode-level agreement of ClassifierReward with the task's own success, on unseen seeds: per behaviour
    and per success_frames k, the share of episodes where the wrapper would fire and where the task succeeded
    (info["success"] is read here to grade the wrapper, never by it)."""
    from tidyarm.reward.labels import make_behaviour
    from tidyarm.reward.wrapper import ClassifierReward, classified_success
    from tidyarm.sim.env import So101Env

    env = ClassifierReward(So101Env(args.task, obs_mode="pixels", image_size=args.record_size, supersample=2,
                                    cameras=classifier.config.cameras), classifier, terminate_on_success=False)
    rng, rows = np.random.default_rng(args.seed), []
    for name in ("expert", "noisy", "drop", "low", "random", "still"):
        runs = []
        for index in range(args.rollouts):
            act = make_behaviour(name, env.unwrapped, rng)
            obs, _ = env.reset(seed=100_000 + index)
            if hasattr(act, "reset"):
                act.reset()
            probabilities, task_success, done = [], False, False
            while not done:
                obs, _, terminated, truncated, info = env.step(act(obs))
                probabilities.append(info["classifier_probability"])
                task_success |= bool(info["success"])
                done = terminated or truncated
            runs.append((np.array(probabilities), task_success))
        for frames in (1, 3, 10):
            fired = [bool(classified_success(p, classifier.threshold, frames).any()) for p, _ in runs]
            succeeded = [s for _, s in runs]
            rows.append({"behaviour": name, "success_frames": frames, "episodes": len(runs),
                         "task_success": float(np.mean(succeeded)), "wrapper_success": float(np.mean(fired)),
                         "agreement": float(np.mean(np.equal(fired, succeeded)))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="lift")
    parser.add_argument("--episodes", type=int, default=200, help="labelled episodes to record (all splits)")
    parser.add_argument("--cameras", nargs="+", default=["front,wrist"], help="camera sets, comma-separated")
    parser.add_argument("--train-episodes", nargs="+", type=int, default=[0], help="0: the whole train split")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--record-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--seed", type=int, default=0, help="first recorded episode's seed; training seed")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation/test split")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tidyarm-reward-bench"))
    parser.add_argument("--name", default="reward_classifier")
    parser.add_argument("--rollouts", type=int, default=0,
                        help="episodes per behaviour for the wrapper check on unseen seeds (last cell's classifier)")
    parser.add_argument("--save", type=Path, default=None, help="save the last cell's classifier here")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    frames, behaviours = labelled_frames(args)
    episode_ids = list(dict.fromkeys(frames.episode.tolist()))
    split = split_episodes(episode_ids, behaviours, seed=args.split_seed)
    rows = []
    for cameras in args.cameras:
        for count in args.train_episodes:
            count = count or len(split[0])
            row, classifier = run_cell(frames, split, tuple(cameras.split(",")), count, behaviours, args)
            rows.append(row)
            print(rows[-1], flush=True)
    if args.save:
        save_classifier(classifier, args.save, {"metrics": {"test": rows[-1]}})
    if args.rollouts:
        report(f"{args.name}_wrapper", rollout_check(classifier, args),
               ["behaviour", "success_frames", "episodes", "task_success", "wrapper_success", "agreement"])
    report(args.name, rows, ["task", "cameras", "train_episodes", "test_episodes", "precision", "recall", "f1",
                             "fp", "fn", "threshold", "train_s", "best_step", "load", "split_seed",
                             "fp/fn by behaviour"])


if __name__ == "__main__":
    main()
