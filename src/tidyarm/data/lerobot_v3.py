"""The LeRobot v3.0 dataset layout: paths, info.json, tasks.parquet, and atomic file writes.

    meta/info.json                                  schema, fps, totals, path templates (the commit point)
    meta/stats.json                                 per-feature min/max/mean/std/count/q01..q99
    meta/tasks.parquet                              task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        one row per episode: length, tasks, where its rows and
                                                    video segments live, per-episode stats
    data/chunk-000/file-000.parquet                 one row per frame, many episodes per file
    videos/<feature>/chunk-000/file-000.mp4         one camera, many episodes back to back

Files rotate to file-001, ... when they pass a size limit, and to chunk-001 after `chunks_size` files.
The facts (names, templates, defaults, column names) follow LeRobot's own writer (lerobot 0.4.x,
`lerobot/datasets/utils.py` and `lerobot_dataset.py`); the code is ours.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
DEFAULT_CHUNK_SIZE = 1000  # files per chunk directory
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200
# Columns every frame carries; LeRobot lists them as features of shape (1,) after the dataset's own.
DEFAULT_FEATURES = {name: {"dtype": dtype, "shape": [1], "names": None} for name, dtype in (
    ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"), ("index", "int64"),
    ("task_index", "int64"))}
TASK_INDEX_COLUMN = "__index_level_0__"  # how pandas stores LeRobot's task-string index in tasks.parquet
V21_CONVERT_HINT = ("convert it with LeRobot: `python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 "
                    "--repo-id=<owner/name> --root=<dataset dir> --push-to-hub=false` (lerobot >= 0.4), then read the "
                    "converted copy")


class DatasetError(ValueError):
    """A dataset on disk that cannot be read as LeRobot v3.0; the message names the file and the field."""


# -- atomic writes -----------------------------------------------------------------------------------
def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    temp.write_text(json.dumps(payload, indent=4, ensure_ascii=False))
    os.replace(temp, path)


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    pq.write_table(table, temp, compression="snappy")
    os.replace(temp, path)


def chunk_file_path(template: str, chunk_index: int, file_index: int, **keys) -> str:
    return template.format(chunk_index=chunk_index, file_index=file_index, **keys)


def next_chunk_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The file after (chunk, file): the next file index, or file 0 of the next chunk when this one is full."""
    return (chunk_index + 1, 0) if file_index >= chunks_size - 1 else (chunk_index, file_index + 1)


# -- info.json -----------------------------------------------------------------------------------------
def new_info(fps: float, features: dict[str, dict], robot_type: str | None, chunks_size: int,
             data_files_size_in_mb: int, video_files_size_in_mb: int) -> dict:
    """info.json of an empty dataset (LeRobot's key order), the dataset's features then the default ones."""
    has_video = any(spec["dtype"] == "video" for spec in features.values())
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": int(fps) if float(fps).is_integer() else fps,
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": {**{name: _json_spec(spec) for name, spec in features.items()}, **DEFAULT_FEATURES},
    }


def _json_spec(spec: dict) -> dict:
    return {**spec, "shape": [int(size) for size in spec["shape"]]}


def check_features(features: dict[str, dict]) -> None:
    """Feature specs tidyarm can write: a dtype, a shape, no '/' in the name, no clash with default columns."""
    for name, spec in features.items():
        if "/" in name:
            raise ValueError(f"feature name {name!r} contains '/'; LeRobot uses '/' to flatten stats columns")
        if name in DEFAULT_FEATURES:
            raise ValueError(f"feature name {name!r} is a column every dataset already has; choose another")
        missing = {"dtype", "shape"} - set(spec)
        if missing:
            raise ValueError(f"feature {name!r} lacks {sorted(missing)}; expected dtype, shape and names")
        if spec["dtype"] == "video":
            shape = tuple(spec["shape"])
            if len(shape) != 3 or shape[2] != 3 or shape[0] % 2 or shape[1] % 2:
                raise ValueError(f"video feature {name!r} has shape {shape}; expected (height, width, 3) with "
                                 "even height and width (yuv420p video)")
        elif spec["dtype"] not in ("float32", "float64", "int64", "int32", "bool"):
            raise ValueError(f"feature {name!r} has dtype {spec['dtype']!r}; this writer stores video, float32, "
                             "float64, int32, int64 or bool")


# -- tasks.parquet -------------------------------------------------------------------------------------
def tasks_table(tasks: list[str]) -> pa.Table:
    """tasks.parquet as LeRobot writes it: pandas DataFrame {task_index} indexed by the task string."""
    pandas_meta = {
        "index_columns": [TASK_INDEX_COLUMN],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": None, "field_name": TASK_INDEX_COLUMN, "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(np.arange(len(tasks)), pa.int64()),
                      TASK_INDEX_COLUMN: pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_tasks(root: Path) -> list[str]:
    """task_index -> task string, from tasks.parquet (index column or a 'task' column)."""
    path = root / TASKS_PATH
    if not path.is_file():
        raise DatasetError(f"{path}: missing; every LeRobot v3.0 dataset lists its tasks there")
    table = pq.read_table(path)
    names = table.column_names
    text_column = next((c for c in (TASK_INDEX_COLUMN, "task") if c in names), None)
    if "task_index" not in names or text_column is None:
        raise DatasetError(f"{path}: expected columns task_index and the task text ('{TASK_INDEX_COLUMN}' "
                           f"or 'task'); found {names}")
    indices = table.column("task_index").to_pylist()
    texts = table.column(text_column).to_pylist()
    tasks = [""] * (max(indices) + 1 if indices else 0)
    for index, text in zip(indices, texts, strict=True):
        tasks[index] = text
    return tasks


def read_info(root: Path) -> dict:
    """info.json, checked for the v3.0 layout (an older version is refused with how to convert it)."""
    path = root / INFO_PATH
    if not path.is_file():
        raise DatasetError(f"{path}: missing; is {root} a LeRobot dataset root?")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from error
    version = str(info.get("codebase_version", ""))
    if version.startswith("v2") or version.startswith("v1"):
        raise DatasetError(f"{path}: codebase_version is {version!r}; tidyarm reads LeRobot v3.0 datasets. "
                           f"This is an older layout: {V21_CONVERT_HINT}")
    if not version.startswith("v3."):
        raise DatasetError(f"{path}: codebase_version is {version!r}; expected 'v3.0'")
    for key in ("fps", "features", "total_episodes", "data_path"):
        if key not in info:
            raise DatasetError(f"{path}: field {key!r} is missing")
    return info


def __getattr__(name: str):
    """The reader and the writer live in their own modules (reader.py, writer.py, which import this one);
    they are reachable from here too, without an import cycle."""
    if name == "read_dataset":
        from tidyarm.data.reader import read_dataset

        return read_dataset
    if name == "DatasetWriter":
        from tidyarm.data.writer import DatasetWriter

        return DatasetWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
