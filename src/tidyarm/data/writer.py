"""DatasetWriter: record episodes into a LeRobot v3.0 dataset, crash-safe after every saved episode.

Crash safety. Frames of the episode being recorded live in memory (numeric columns) and in a staging
mp4 per camera (.recording/), so a crash mid-episode touches no dataset file. save_episode then
rewrites, each by temp file + os.replace, in this order: the data parquet file (old rows + the new
episode), each camera's mp4 (old packets + the new segment, remuxed), the episodes parquet file, tasks,
stats, and last meta/info.json, whose total_episodes / total_frames are the commit point. A crash
between two of these replacements leaves rows, packets or an episode row past what info.json counts;
every reader (ours and LeRobot's, whose length comes from info.json and whose lookups go through the
episode rows) ignores them. Rewriting whole files costs O(file size) per episode, bounded by the file
size limits (files rotate like LeRobot's); for sim datasets it is a few milliseconds.

Rewriting rather than appending (LeRobot keeps a ParquetWriter open and only finalizes the file footer at
the end, which is why an interrupted LeRobot recording can lose its data file) is what keeps every
file on disk complete and readable after each episode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from tidyarm.data import stats as feature_stats
from tidyarm.data.lerobot_v3 import (
    DATA_PATH,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    check_features,
    new_info,
    next_chunk_file,
    tasks_table,
    write_json_atomic,
    write_parquet_atomic,
)
from tidyarm.data.resume import prepare_resume
from tidyarm.data.video import SegmentEncoder, append_segment, duration_s, video_info

STAGING = ".recording"
_ARROW_TYPES = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "int32": pa.int32(),
                "bool": pa.bool_()}


class _RotatingFile:
    """Where the next episode of one kind of file goes: (chunk, file), rotated past a size limit."""

    def __init__(self, root: Path, template: str, limit_mb: float, chunks_size: int, **keys):
        self.root, self.template, self.limit_mb, self.keys = root, template, limit_mb, keys
        self.chunks_size = chunks_size
        self.chunk, self.file, self.used = 0, 0, False

    @property
    def path(self) -> Path:
        return self.root / self.template.format(chunk_index=self.chunk, file_index=self.file, **self.keys)

    def place(self, incoming_mb: float) -> bool:
        """Pick the file for an episode of about `incoming_mb`; True when that starts a new file."""
        if not self.used:
            self.used = True
            return True
        if self.path.stat().st_size / 2**20 + incoming_mb >= self.limit_mb:
            self.chunk, self.file = next_chunk_file(self.chunk, self.file, self.chunks_size)
            return True
        return False


class DatasetWriter:
    """Write episodes frame by frame into a new LeRobot v3.0 dataset at `root`.

    features: LeRobot feature specs (dtype float32/float64/int64/int32/bool with a 1-D shape, or video
    with shape (H, W, 3)). The default columns (timestamp, frame_index, episode_index, index, task_index)
    are added by the writer.
    resume: append to the dataset already at `root` (same fps and features), e.g. after a crash; new
    episodes go to new files (resume.py).
    """

    def __init__(self, root: str | Path, fps: float, features: dict[str, dict],
                 robot_type: str | None = "so101_follower", vcodec: str = "libsvtav1",
                 chunks_size: int = DEFAULT_CHUNK_SIZE,
                 data_files_size_in_mb: int = DEFAULT_DATA_FILE_SIZE_IN_MB,
                 video_files_size_in_mb: int = DEFAULT_VIDEO_FILE_SIZE_IN_MB, resume: bool = False):
        self.root = Path(root)
        existing = (self.root / INFO_PATH).is_file()
        if self.root.exists() and any(self.root.iterdir()) and not (resume and existing):
            raise ValueError(f"dataset root {self.root} exists and is not empty; write a new dataset elsewhere"
                             + ("" if resume else " or resume it"))
        if not fps > 0:
            raise ValueError(f"fps = {fps}: expected a positive frame rate")
        check_features(features)
        for name, spec in features.items():
            if spec["dtype"] != "video" and len(spec["shape"]) != 1:
                raise ValueError(f"feature {name!r} has shape {spec['shape']}; this writer stores 1-D vectors")
        self.fps, self.features, self.vcodec = float(fps), dict(features), vcodec
        self.video_keys = [name for name, spec in features.items() if spec["dtype"] == "video"]
        self.info = new_info(fps, features, robot_type, chunks_size, data_files_size_in_mb, video_files_size_in_mb)
        self.tasks: list[str] = []
        self.stats: dict | None = None
        self._data = _RotatingFile(self.root, DATA_PATH, data_files_size_in_mb, chunks_size)
        self._meta = _RotatingFile(self.root, EPISODES_PATH, data_files_size_in_mb, chunks_size)
        self._videos = {key: _RotatingFile(self.root, VIDEO_PATH, video_files_size_in_mb, chunks_size, video_key=key)
                        for key in self.video_keys}
        self._data_table: pa.Table | None = None  # rows of the current data file
        self._meta_rows: list[dict] = []  # rows of the current episodes file
        self._video_end = dict.fromkeys(self.video_keys, 0.0)  # seconds already in each current mp4
        self._closed = False
        self._reset_buffer()
        if resume and existing:
            self._resume()
            return
        write_parquet_atomic(self.root / TASKS_PATH, tasks_table(self.tasks))  # an empty dataset opens too
        write_json_atomic(self.root / INFO_PATH, self.info)

    def _resume(self) -> None:
        shutil.rmtree(self.root / STAGING, ignore_errors=True)  # frames of the episode that was cut off
        state = prepare_resume(self.root, self.fps, self.features)
        self.info, self.tasks, self.stats = state.info, state.tasks, state.stats
        self._data.chunk, self._data.file = state.data_next
        self._meta.chunk, self._meta.file = state.meta_next
        for key, position in state.video_next.items():
            self._videos[key].chunk, self._videos[key].file = position

    # -- recording ------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return self.info["total_episodes"]

    @property
    def episode_frames(self) -> int:
        """Frames added to the episode being recorded."""
        return self._length

    def add_frame(self, frame: dict) -> None:
        """Add one frame: every feature, numeric values as arrays of their shape, images uint8 (H, W, 3)."""
        if self._closed:
            raise ValueError(f"DatasetWriter for {self.root} is closed")
        missing = [name for name in self.features if name not in frame]
        extra = [name for name in frame if name not in self.features]
        if missing or extra:
            raise ValueError(f"frame {self._length} of episode {self.num_episodes}: missing features {missing}, "
                             f"unexpected {extra}; expected exactly {list(self.features)}")
        values = {name: self._checked(name, frame[name]) for name in self.features}
        for key in self.video_keys:
            encoder = self._encoders.get(key)
            if encoder is None:
                height, width, _ = self.features[key]["shape"]
                encoder = self._encoders[key] = SegmentEncoder(self.root / STAGING / f"{key}.mp4", self.fps,
                                                               height, width, self.vcodec)
            encoder.add(values[key])
            self._histograms[key].append(feature_stats.channel_histograms(values[key]))
        for name, column in self._columns.items():
            column.append(values[name])
        self._length += 1

    def _checked(self, name: str, value) -> np.ndarray:
        spec = self.features[name]
        array = np.asarray(value)
        shape = tuple(spec["shape"])
        if spec["dtype"] == "video":
            if array.shape != shape or array.dtype != np.uint8:
                raise ValueError(f"feature {name!r}: image {array.dtype} {array.shape}; expected uint8 {shape}")
            return array
        if array.shape == () and shape == (1,):
            array = array.reshape(1)
        if array.shape != shape:
            raise ValueError(f"feature {name!r}: value of shape {array.shape}; expected {shape}")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"feature {name!r}: value of dtype {array.dtype}; expected {spec['dtype']}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"feature {name!r}: value contains NaN or inf: {array}")
        return array.astype(spec["dtype"])

    def discard_episode(self) -> None:
        """Drop the frames recorded since the last save_episode."""
        for encoder in self._encoders.values():
            encoder.cancel()
        self._reset_buffer()

    def _reset_buffer(self) -> None:
        self._columns = {name: [] for name in self.features if name not in self.video_keys}
        self._encoders: dict[str, SegmentEncoder] = {}
        self._histograms: dict[str, list[np.ndarray]] = {key: [] for key in self.video_keys}
        self._length = 0

    # -- saving ---------------------------------------------------------------------------------------
    def save_episode(self, task: str) -> int:
        """Write the recorded frames as one episode with this language task; returns its episode_index."""
        if self._length == 0:
            raise ValueError(f"no frames recorded for episode {self.num_episodes}; nothing to save")
        if not task:
            raise ValueError("task must be a non-empty instruction, e.g. 'Put the cube in the bowl.'")
        episode, length, start = self.num_episodes, self._length, self.info["total_frames"]
        if task not in self.tasks:
            self.tasks.append(task)
        columns = {name: np.stack(values) for name, values in self._columns.items()}
        columns["timestamp"] = (np.arange(length) / self.fps).astype(np.float32)
        columns["frame_index"] = np.arange(length, dtype=np.int64)
        columns["episode_index"] = np.full(length, episode, dtype=np.int64)
        columns["index"] = np.arange(start, start + length, dtype=np.int64)
        columns["task_index"] = np.full(length, self.tasks.index(task), dtype=np.int64)
        episode_stats = {name: feature_stats.vector_stats(column) for name, column in columns.items()}
        row = {"episode_index": episode, "tasks": [task], "length": length, **self._write_data(columns)}
        row["dataset_from_index"], row["dataset_to_index"] = start, start + length
        for key in self.video_keys:
            row.update(self._write_video(key))
            sampled = np.stack(self._histograms[key])[feature_stats.image_sample_indices(length)]
            episode_stats[key] = {**feature_stats.image_stats(sampled.sum(0)), "count": np.array([len(sampled)])}
        ordered = {name: episode_stats[name] for name in self.info["features"] if name in episode_stats}
        for name, values in ordered.items():
            row.update({f"stats/{name}/{stat}": np.asarray(value).tolist() for stat, value in values.items()})
        self._write_meta(row)
        self.stats = ordered if self.stats is None else feature_stats.aggregate([self.stats, ordered])
        write_parquet_atomic(self.root / TASKS_PATH, tasks_table(self.tasks))
        write_json_atomic(self.root / STATS_PATH, feature_stats.to_json(self.stats))
        self.info.update(total_episodes=episode + 1, total_frames=start + length, total_tasks=len(self.tasks),
                         splits={"train": f"0:{episode + 1}"})
        write_json_atomic(self.root / INFO_PATH, self.info)  # the commit point
        self._reset_buffer()
        return episode

    def _write_data(self, columns: dict[str, np.ndarray]) -> dict:
        arrays = {}
        for name, column in columns.items():
            spec = self.features.get(name, {"dtype": str(column.dtype), "shape": [1]})
            arrow_type = _ARROW_TYPES[spec["dtype"]]
            if tuple(spec["shape"]) == (1,):
                arrays[name] = pa.array(column.reshape(-1), arrow_type)
            else:
                arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(column.reshape(-1), arrow_type),
                                                                 column.shape[1])
        table = pa.table(arrays)
        per_frame_mb = (self._data.path.stat().st_size / len(self._data_table) / 2**20) if self._data_table else 0.0
        if self._data.place(per_frame_mb * len(table)):
            self._data_table = table
        else:
            self._data_table = pa.concat_tables([self._data_table, table])
        write_parquet_atomic(self._data.path, self._data_table)
        return {"data/chunk_index": self._data.chunk, "data/file_index": self._data.file}

    def _write_video(self, key: str) -> dict:
        segment = self._encoders[key].path
        self._encoders[key].close()
        duration = duration_s(segment)
        target = self._videos[key]
        if target.place(segment.stat().st_size / 2**20):
            self._video_end[key] = 0.0
            target.path.unlink(missing_ok=True)  # never append to a file left by another writer
        start = self._video_end[key]
        append_segment(target.path, segment, start)
        self._video_end[key] = start + duration
        if "info" not in self.info["features"][key]:
            self.info["features"][key]["info"] = video_info(target.path)
        return {f"videos/{key}/chunk_index": target.chunk, f"videos/{key}/file_index": target.file,
                f"videos/{key}/from_timestamp": start, f"videos/{key}/to_timestamp": start + duration}

    def _write_meta(self, row: dict) -> None:
        if self._meta.place(0.0):
            self._meta_rows = []
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = self._meta.chunk, self._meta.file
        self._meta_rows.append(row)
        write_parquet_atomic(self._meta.path, pa.Table.from_pylist(self._meta_rows))

    # -- lifetime -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish: an episode still being recorded is discarded (call save_episode first to keep it)."""
        if self._closed:
            return
        self.discard_episode()
        shutil.rmtree(self.root / STAGING, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
