"""Resuming a dataset: load a writer's state from disk and remove what an interrupted save left behind.

info.json's totals are the commit point (writer.py). Whatever lies past them, data rows with index >=
total_frames, episode rows with episode_index >= total_episodes, files that only an uncommitted episode
uses, is deleted here, because LeRobot's reader indexes rows by position and would trip over it. New
episodes then go to fresh files after the last committed ones (as LeRobot does when it resumes), so no
existing file is appended to, and dataset stats are recomputed from the committed episodes' own stats.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tidyarm.data import stats as feature_stats
from tidyarm.data.lerobot_v3 import (
    DEFAULT_FEATURES,
    EPISODES_DIR,
    STATS_PATH,
    next_chunk_file,
    read_info,
    read_tasks,
    write_json_atomic,
    write_parquet_atomic,
)

_CHUNK_FILE = re.compile(r"chunk-(\d+)/file-(\d+)\.\w+$")


@dataclass
class ResumeState:
    info: dict
    tasks: list[str]
    stats: dict | None
    data_next: tuple[int, int]
    """(chunk, file) the next episode's data rows go to."""
    meta_next: tuple[int, int]
    video_next: dict[str, tuple[int, int]]


def _position(path: Path) -> tuple[int, int]:
    match = _CHUNK_FILE.search(path.as_posix())
    return int(match.group(1)), int(match.group(2))


def _after(positions: list[tuple[int, int]], chunks_size: int) -> tuple[int, int]:
    return next_chunk_file(*max(positions), chunks_size) if positions else (0, 0)


def _check_same_features(root: Path, info: dict, fps: float, features: dict[str, dict]) -> None:
    if float(info["fps"]) != float(fps):
        raise ValueError(f"{root}: the dataset records at fps {info['fps']}, not {fps}; cannot resume")
    on_disk = {name: (spec["dtype"], list(spec["shape"])) for name, spec in info["features"].items()
               if name not in DEFAULT_FEATURES}
    wanted = {name: (spec["dtype"], [int(s) for s in spec["shape"]]) for name, spec in features.items()}
    if on_disk != wanted:
        differing = sorted(name for name in set(on_disk) | set(wanted) if on_disk.get(name) != wanted.get(name))
        found = {name: on_disk.get(name) for name in differing}
        asked = {name: wanted.get(name) for name in differing}
        raise ValueError(f"{root}: features differ from the dataset's: on disk {found}, asked {asked}; cannot resume")


def _trim(path: Path, column: str, limit: int) -> bool:
    """Keep only rows with `column` < limit; delete the file when none remain. True if the file remains."""
    table = pq.read_table(path)
    kept = table.filter(pc.less(table[column], limit))
    if kept.num_rows == 0:
        path.unlink()
        return False
    if kept.num_rows < table.num_rows:
        write_parquet_atomic(path, kept)
    return True


def prepare_resume(root: Path, fps: float, features: dict[str, dict]) -> ResumeState:
    """Check the dataset at `root` matches `features`, clean up after an interrupted save, and return where
    the next episode goes."""
    info = read_info(root)
    _check_same_features(root, info, fps, features)
    episodes, frames, chunks_size = info["total_episodes"], info["total_frames"], info["chunks_size"]
    meta_files = [path for path in sorted((root / EPISODES_DIR).glob("*/*.parquet"))
                  if _trim(path, "episode_index", episodes)]
    rows = [row for path in meta_files for row in pq.read_table(path).to_pylist()]
    data_files = [path for path in sorted((root / "data").glob("*/*.parquet")) if _trim(path, "index", frames)]
    video_next = {}
    for key in (name for name, spec in features.items() if spec["dtype"] == "video"):
        used = {(row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"]) for row in rows}
        for path in sorted((root / "videos" / key).glob("*/*.mp4")):
            if _position(path) not in used:
                path.unlink()  # written for an episode that was never committed
        video_next[key] = _after(sorted(used), chunks_size)
    per_episode = [_episode_stats(row) for row in rows]
    dataset_stats = feature_stats.aggregate(per_episode) if per_episode else None
    if dataset_stats is not None:
        write_json_atomic(root / STATS_PATH, feature_stats.to_json(dataset_stats))
    return ResumeState(info=json.loads(json.dumps(info)), tasks=read_tasks(root), stats=dataset_stats,
                       data_next=_after([_position(p) for p in data_files], chunks_size),
                       meta_next=_after([_position(p) for p in meta_files], chunks_size), video_next=video_next)


def _episode_stats(row: dict) -> dict[str, dict[str, np.ndarray]]:
    stats: dict[str, dict[str, np.ndarray]] = {}
    for column, value in row.items():
        if column.startswith("stats/"):
            _, feature, stat = column.split("/")
            stats.setdefault(feature, {})[stat] = np.asarray(value)
    return stats
