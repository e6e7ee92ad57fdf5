"""LeRobot compatibility, both ways, checked frame by frame (not run in CI: needs a separate LeRobot venv).

1. Record place-expert episodes (front + wrist cameras) and write them with tidyarm's DatasetWriter.
2. In a LeRobot venv: load that dataset with LeRobot's own `LeRobotDataset`, dump every item; then write
   the same frames with LeRobot's writer (`LeRobotDataset.create` / `add_frame` / `save_episode`).
3. Back here: compare LeRobot's items with the recorded frames and with what tidyarm's reader returns,
   and read LeRobot's dataset with tidyarm's reader.

    .venv/bin/python bench/lerobot_compat.py --lerobot-python /tmp/lerobot-venv/bin/python

The LeRobot side of this file (`--lerobot-side DIR`) imports only numpy and lerobot. How the venv was made
(and why it needs a torchvision stand-in on a CPU-only torch) is in docs/datasets.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TASK = "Put the cube in the bowl."


def lerobot_side(out: Path) -> None:
    """Runs in the LeRobot venv: read tidyarm's dataset, then write one with LeRobot's writer."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset("tidyarm/place-expert", root=out / "ours", video_backend="pyav")
    items = [dataset[i] for i in range(len(dataset))]
    keys = [k for k in items[0] if k != "task"]
    dump = {k: np.stack([item[k].numpy() for item in items]) for k in keys}
    dump["task_ok"] = np.array([item["task"] == TASK for item in items])
    np.savez(out / "lerobot_read.npz", **dump)
    print(f"LeRobotDataset loaded {len(dataset)} frames, {dataset.num_episodes} episodes, keys {keys}")

    frames = np.load(out / "frames.npz")
    # LeRobot's frame validation compares shapes as tuples
    saved = json.loads((out / "features.json").read_text())
    features = {key: {**spec, "shape": tuple(spec["shape"])} for key, spec in saved.items()}
    theirs = LeRobotDataset.create("tidyarm/place-expert-lerobot", fps=int(frames["fps"]), features=features,
                                   root=out / "theirs", robot_type="so101_follower", use_videos=True)
    bounds = frames["bounds"]
    for start, stop in bounds:
        for i in range(start, stop):
            frame = {k: frames[k][i] for k in features}
            theirs.add_frame({**frame, "task": TASK})
        theirs.save_episode()
    theirs.finalize()
    print(f"LeRobot's writer wrote {len(bounds)} episodes to {out / 'theirs'}")


def fixture_frame(episode: int, frame: int) -> dict[str, np.ndarray]:
    """Deterministic frame of the LeRobot-written test fixture (tests/test_lerobot_v3.py knows the same rule)."""
    state = np.array([episode * 100 + frame + joint / 8 for joint in range(6)], dtype=np.float32)
    image = np.empty((64, 64, 3), dtype=np.uint8)
    image[:] = [(40 * episode + 10 * frame + 60 * channel) % 200 + 20 for channel in range(3)]
    return {"observation.state": state, "action": state + 0.5, "observation.images.front": image}


FIXTURE_LENGTHS = (12, 9, 15, 10)
FIXTURE_TASKS = ("Pick up the cube.", "Put the cube in the bowl.")


def make_fixture(root: Path, image_dtype: bool = False) -> None:
    """Runs in the LeRobot venv: a small SO-101 dataset written by LeRobot's writer, with tiny file-size limits
    so that data files rotate across files and chunks and each video file holds two episodes. image_dtype:
    store the camera as PNG frames inside the parquet files (LeRobot's `image` dtype) instead of video."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    names = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos",
             "gripper.pos"]
    features = {"observation.state": {"dtype": "float32", "shape": (6,), "names": names},
                "action": {"dtype": "float32", "shape": (6,), "names": names},
                "observation.images.front": {"dtype": "image" if image_dtype else "video", "shape": (64, 64, 3),
                                             "names": ["height", "width", "channels"]}}
    dataset = LeRobotDataset.create("tidyarm/fixture", fps=30, features=features, root=root,
                                    robot_type="so101_follower", use_videos=not image_dtype)
    dataset.meta.update_chunk_settings(chunks_size=2, data_files_size_in_mb=0.001, video_files_size_in_mb=0.0025)
    for episode, length in enumerate(FIXTURE_LENGTHS[:2] if image_dtype else FIXTURE_LENGTHS):
        for frame in range(length):
            dataset.add_frame({**fixture_frame(episode, frame), "task": FIXTURE_TASKS[episode % 2]})
        dataset.save_episode()
    dataset.finalize()


def compare(name: str, expected: np.ndarray, actual: np.ndarray, exact: bool) -> dict:
    if expected.shape != actual.shape:
        return {"check": name, "ok": False, "detail": f"shape {actual.shape} != {expected.shape}"}
    error = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    ok = bool(error.max() == 0) if exact else bool(error.mean() < 8.0)  # lossy video: mean |error| in 0..255
    return {"check": name, "ok": ok, "max_abs_error": float(error.max()), "mean_abs_error": float(error.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lerobot-python", default="/tmp/lerobot-venv/bin/python")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tidyarm-lerobot-compat"))
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--lerobot-side", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--make-fixture", type=Path, default=None,
                        help="(run with the LeRobot venv's python) write the LeRobot-made test fixture here")
    parser.add_argument("--image-dtype", action="store_true", help="fixture with PNG frames in parquet, not video")
    args = parser.parse_args()
    if args.lerobot_side:
        return lerobot_side(args.lerobot_side)
    if args.make_fixture:
        return make_fixture(args.make_fixture, args.image_dtype)

    import shutil

    from tidyarm.data.reader import read_dataset
    from tidyarm.data.record import record_expert_episodes
    from tidyarm.data.writer import DatasetWriter

    os.environ.setdefault("MUJOCO_GL", "egl")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    episodes = record_expert_episodes("place", args.episodes, seed=0, cameras=("front", "wrist"), image_size=96)
    with DatasetWriter(args.out / "ours", episodes.fps, episodes.features) as writer:
        for start, stop in episodes.episode_bounds():
            for i in range(start, stop):
                writer.add_frame({k: episodes.frames[k][i] for k in episodes.features})
            writer.save_episode(TASK)
    np.savez(args.out / "frames.npz", fps=episodes.fps, bounds=np.array(episodes.episode_bounds()),
             **{k: episodes.frames[k] for k in episodes.features})
    (args.out / "features.json").write_text(json.dumps(episodes.features))

    started = time.perf_counter()
    subprocess.run([args.lerobot_python, __file__, "--lerobot-side", str(args.out)], check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lerobot_seconds = time.perf_counter() - started

    theirs_read = np.load(args.out / "lerobot_read.npz")
    ours = read_dataset(args.out / "ours")
    checks = [{"check": "LeRobot item task strings", "ok": bool(theirs_read["task_ok"].all())}]
    for key, spec in episodes.features.items():
        recorded = episodes.frames[key]
        if spec["dtype"] == "video":  # LeRobot returns float CHW in [0, 1]
            lerobot_frames = np.round(theirs_read[key].transpose(0, 2, 3, 1) * 255.0)
            checks.append(compare(f"LeRobot read {key} vs recorded", recorded, lerobot_frames, exact=False))
            checks.append(compare(f"LeRobot read {key} vs tidyarm read", ours.frames[key], lerobot_frames, exact=True))
        else:
            checks.append(compare(f"LeRobot read {key} vs recorded", recorded, theirs_read[key], exact=True))
    for key in ("episode_index", "frame_index", "task_index", "timestamp"):
        checks.append(compare(f"LeRobot read {key}", episodes.frames[key], theirs_read[key], exact=True))

    theirs = read_dataset(args.out / "theirs")
    checks.append({"check": "tidyarm read of LeRobot-written: episodes", "ok": theirs.num_episodes == args.episodes})
    for key, spec in episodes.features.items():
        checks.append(compare(f"tidyarm read of LeRobot-written {key}", episodes.frames[key], theirs.frames[key],
                              exact=spec["dtype"] != "video"))
    for check in checks:
        detail = {k: v for k, v in check.items() if k not in ("check", "ok")}
        print(f"{'ok  ' if check['ok'] else 'FAIL'} {check['check']} {detail if detail else ''}")
    results = {"episodes": args.episodes, "frames": episodes.num_frames, "lerobot_side_seconds": lerobot_seconds,
               "all_ok": all(c["ok"] for c in checks), "checks": checks}
    out = Path(__file__).parent / "results" / "lerobot_compat.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"all ok: {results['all_ok']}; results: {out}")
    sys.exit(0 if results["all_ok"] else 1)


if __name__ == "__main__":
    main()
