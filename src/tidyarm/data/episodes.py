"""Episodes: many recorded episodes held in memory as columns keyed by LeRobot feature names.

This is the one contract between datasets (read from disk or recorded in memory) and the imitation
learners: every column is time-major and the episodes are concatenated, as in a LeRobot dataset's
data parquet files, so a batch is a fancy index and an episode is a slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INDEX_COLUMNS = ("episode_index", "frame_index", "task_index")  # int64
TIME_COLUMN = "timestamp"  # float32, seconds since the episode began
FEATURE_DTYPES = ("float32", "int64", "video", "image")  # what tidyarm writes


@dataclass
class Episodes:
    """Frames of many episodes in memory, keyed by LeRobot feature names, time-major, concatenated."""

    fps: float
    """Frames per second (the control rate the episodes were recorded at)."""
    features: dict[str, dict]
    """LeRobot feature specs: {"dtype": "float32"|"int64"|"video", "shape": [...], "names": [...]}."""
    frames: dict[str, np.ndarray]
    """Every feature (leading axis = frame) plus episode_index, frame_index, task_index (int64) and
    timestamp (float32). Video features hold decoded uint8 (N, H, W, 3) arrays, or are absent when
    a dataset was read with load_videos=False."""
    tasks: list[str]
    """task_index -> language instruction."""

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps = {self.fps}: expected a positive frame rate")
        missing = [name for name in (*INDEX_COLUMNS, TIME_COLUMN) if name not in self.frames]
        if missing:
            raise ValueError(f"Episodes.frames lacks the column(s) {missing}; every dataset carries "
                             f"{[*INDEX_COLUMNS, TIME_COLUMN]}")
        lengths = {name: len(column) for name, column in self.frames.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"Episodes.frames columns differ in length: {lengths}")
        for name, column in self.frames.items():
            spec = self.features.get(name)
            if spec is not None and tuple(column.shape[1:]) != tuple(spec["shape"]):
                raise ValueError(f"Episodes.frames[{name!r}] has frames of shape {tuple(column.shape[1:])}; "
                                 f"its feature spec says {tuple(spec['shape'])}")
        task_index = self.frames["task_index"]
        if len(task_index) and (task_index.min() < 0 or task_index.max() >= len(self.tasks)):
            raise ValueError(f"task_index spans {task_index.min()}..{task_index.max()} but only "
                             f"{len(self.tasks)} task(s) are listed")

    # -- shape ----------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self.frames["episode_index"])

    @property
    def num_episodes(self) -> int:
        return len(self.episode_bounds())

    @property
    def episode_ids(self) -> list[int]:
        """The episode_index value of each episode, in order."""
        return [int(self.frames["episode_index"][start]) for start, _ in self.episode_bounds()]

    def episode_bounds(self) -> list[tuple[int, int]]:
        """[start, stop) frame range of each episode, in order (an episode is a run of equal episode_index)."""
        index = self.frames["episode_index"]
        if len(index) == 0:
            return []
        starts = np.flatnonzero(np.diff(index) != 0) + 1
        edges = [0, *starts.tolist(), len(index)]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def feature_names(self, dtype: str | None = None) -> list[str]:
        """Feature names, optionally only those of one dtype (e.g. "video")."""
        return [name for name, spec in self.features.items() if dtype is None or spec["dtype"] == dtype]

    # -- subsets ----------------------------------------------------------------------------------
    def select(self, episode_indices: Sequence[int]) -> Episodes:
        """The episodes whose episode_index is in `episode_indices`, in that order, keeping their indices."""
        bounds = dict(zip(self.episode_ids, self.episode_bounds(), strict=True))
        unknown = [int(i) for i in episode_indices if int(i) not in bounds]
        if unknown:
            raise ValueError(f"episode_index {unknown} not in these episodes; available: {sorted(bounds)}")
        rows = np.concatenate([np.arange(*bounds[int(i)]) for i in episode_indices]) if len(episode_indices) \
            else np.zeros(0, dtype=np.int64)
        frames = {name: column[rows] for name, column in self.frames.items()}
        return Episodes(self.fps, dict(self.features), frames, list(self.tasks))


def episodes_from_frames(fps: float, features: dict[str, dict], episodes: Sequence[Sequence[dict]],
                         task_per_episode: Sequence[str]) -> Episodes:
    """Build Episodes from per-frame dicts (feature name -> array), numbering episodes 0, 1, ... in order."""
    if len(episodes) != len(task_per_episode):
        raise ValueError(f"{len(episodes)} episodes but {len(task_per_episode)} tasks: expected one task each")
    tasks = list(dict.fromkeys(task_per_episode))
    columns: dict[str, list] = {name: [] for name in (*features, *INDEX_COLUMNS, TIME_COLUMN)}
    for episode_index, (frames, task) in enumerate(zip(episodes, task_per_episode, strict=True)):
        for frame_index, frame in enumerate(frames):
            missing = [name for name in features if name not in frame]
            if missing:
                raise ValueError(f"episode {episode_index} frame {frame_index} lacks feature(s) {missing}")
            for name in features:
                columns[name].append(np.asarray(frame[name]))
            columns["episode_index"].append(episode_index)
            columns["frame_index"].append(frame_index)
            columns["task_index"].append(tasks.index(task))
            columns["timestamp"].append(frame_index / fps)
    stacked = {}
    for name, values in columns.items():
        dtype = _numpy_dtype(features[name]) if name in features else \
            (np.float32 if name == TIME_COLUMN else np.int64)
        shape = tuple(features[name]["shape"]) if name in features else ()
        stacked[name] = np.stack(values).astype(dtype) if values else np.zeros((0, *shape), dtype=dtype)
    return Episodes(float(fps), dict(features), stacked, tasks)


def _numpy_dtype(spec: dict) -> type:
    dtype = spec["dtype"]
    if dtype in ("video", "image"):
        return np.uint8
    try:  # LeRobot datasets may carry other numeric columns too (bool, float64, ...)
        return np.dtype(dtype).type
    except TypeError as error:
        raise ValueError(f"feature dtype {dtype!r} is not supported; expected video, image or a numeric "
                         f"dtype such as {list(FEATURE_DTYPES[:2])}") from error
