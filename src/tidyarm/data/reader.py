"""read_dataset: a LeRobot v3.0 dataset on disk (ours or LeRobot's) -> Episodes in memory.

Episodes are located through meta/episodes: each row names the data file holding its frames (by global
`index` range) and, per camera, the mp4 and the [from, to) seconds of its segment; frames are matched to
decoded video frames by timestamp (from_timestamp + the frame's timestamp), as LeRobot does. Episodes
past info.json's total_episodes (an interrupted save) are ignored. Errors name the file and the field.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tidyarm.data.episodes import Episodes
from tidyarm.data.lerobot_v3 import DEFAULT_FEATURES, EPISODES_DIR, INFO_PATH, DatasetError, read_info, read_tasks
from tidyarm.data.video import decode, frame_size

EPISODE_COLUMNS = ("episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                   "dataset_to_index")
VISUAL = ("video", "image")


def read_dataset(root: str | Path, load_videos: bool = True, episodes: Sequence[int] | None = None,
                 tolerance_s: float = 1e-4, image_size: int | tuple[int, int] | None = None) -> Episodes:
    """Read the dataset at `root` (all episodes, or those whose episode_index is in `episodes`).

    load_videos=False skips decoding (video features are then absent from Episodes.frames).
    tolerance_s: how far (s) a decoded video frame may sit from the time a frame asks for.
    image_size: resize camera frames to this (height, width) (an int: square) while decoding, by area
    averaging; real recordings (480x640 at 30 fps) need it to fit in memory (about 0.9 MB per frame).
    """
    root = Path(root)
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    info = read_info(root)
    features = _dataset_features(root, info)
    tasks = read_tasks(root)
    rows = _episode_rows(root, info, features)
    if episodes is not None:
        by_index = {row["episode_index"]: row for row in rows}
        unknown = sorted(set(int(e) for e in episodes) - set(by_index))
        if unknown:
            raise DatasetError(f"{root / EPISODES_DIR}: episode_index {unknown} not in this dataset "
                               f"(0..{info['total_episodes'] - 1})")
        rows = [by_index[int(e)] for e in episodes]
    numeric = {name: spec for name, spec in features.items() if spec["dtype"] not in VISUAL}
    frames = _read_data(root, info, rows, numeric)
    if load_videos:
        for name, spec in features.items():
            if spec["dtype"] == "video":
                frames[name] = _read_video(root, info, rows, name, spec, frames["timestamp"], tolerance_s, size)
            elif spec["dtype"] == "image":
                frames[name] = _decode_images(frames.pop(f"__image__{name}"), name, spec, root, size)
    if size is not None:
        for spec in features.values():
            if spec["dtype"] in VISUAL:
                spec["shape"] = [*size, spec["shape"][2]]
    frames = {name: column for name, column in frames.items() if not name.startswith("__image__")}
    frames.pop("index", None)
    return Episodes(float(info["fps"]), features, frames, tasks)


def _dataset_features(root: Path, info: dict) -> dict[str, dict]:
    """The dataset's own features (not the default index columns), checked for a dtype and a shape."""
    features = {}
    for name, spec in info["features"].items():
        if name in DEFAULT_FEATURES:
            continue
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise DatasetError(f"{root / INFO_PATH}: features.{name} needs 'dtype' and 'shape'; found {spec!r}")
        if spec["dtype"] == "string":
            continue  # free text per frame: not an array feature
        features[name] = {**spec, "shape": [int(size) for size in spec["shape"]]}
    return features


def _episode_rows(root: Path, info: dict, features: dict[str, dict]) -> list[dict]:
    files = sorted((root / EPISODES_DIR).glob("*/*.parquet"))
    total = int(info["total_episodes"])
    if not files and total:
        raise DatasetError(f"{root / EPISODES_DIR}: no episodes parquet file, but info.json counts {total} episodes")
    video_columns = [f"videos/{name}/{field}" for name, spec in features.items() if spec["dtype"] == "video"
                     for field in ("chunk_index", "file_index", "from_timestamp")]
    rows: dict[int, dict] = {}
    for path in files:
        names = pq.read_schema(path).names
        missing = [c for c in (*EPISODE_COLUMNS, *video_columns) if c not in names]
        if missing:
            raise DatasetError(f"{path}: episode column(s) {missing} missing")
        table = pq.read_table(path, columns=[*EPISODE_COLUMNS, *video_columns])
        for row in table.to_pylist():
            if row["episode_index"] < total:  # rows past the count are an interrupted save: ignore them
                rows[row["episode_index"]] = row
    absent = sorted(set(range(total)) - set(rows))
    if absent:
        raise DatasetError(f"{root / EPISODES_DIR}: episode_index {absent[:10]} listed in info.json "
                           f"(total_episodes={total}) but missing from the episodes files")
    return [rows[index] for index in range(total)]


def _read_data(root: Path, info: dict, rows: list[dict], numeric: dict[str, dict]) -> dict[str, np.ndarray]:
    by_file: dict[tuple[int, int], list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        by_file[(row["data/chunk_index"], row["data/file_index"])].append(position)
    image_columns = [name for name, spec in info["features"].items() if spec.get("dtype") == "image"]
    wanted = [*numeric, "timestamp", "frame_index", "episode_index", "index", "task_index", *image_columns]
    parts: list[tuple[int, dict[str, np.ndarray]]] = []
    for (chunk, file), positions in by_file.items():
        path = root / info["data_path"].format(chunk_index=chunk, file_index=file)
        if not path.is_file():
            raise DatasetError(f"{path}: missing; episode {rows[positions[0]]['episode_index']} "
                               f"(data/chunk_index={chunk}, data/file_index={file}) points there")
        names = pq.read_schema(path).names
        missing = [name for name in wanted if name not in names]
        if missing:
            raise DatasetError(f"{path}: column(s) {missing} missing (features listed in info.json)")
        table = pq.read_table(path, columns=wanted)
        for position in positions:
            row = rows[position]
            mask = pc.and_(pc.greater_equal(table["index"], row["dataset_from_index"]),
                           pc.less(table["index"], row["dataset_to_index"]))
            episode = table.filter(mask)
            if episode.num_rows != row["length"]:
                raise DatasetError(f"{path}: episode {row['episode_index']} has {episode.num_rows} rows with index in "
                                   f"[{row['dataset_from_index']}, {row['dataset_to_index']}); its length is "
                                   f"{row['length']}")
            parts.append((position, _columns(episode, numeric, image_columns, path)))
    parts.sort(key=lambda part: part[0])
    names = parts[0][1].keys() if parts else [*numeric, "timestamp", "frame_index", "episode_index", "task_index"]
    frames = {}
    for name in names:
        values = [columns[name] for _, columns in parts]
        frames[name] = np.concatenate(values) if values else _empty(name, numeric)
    return frames


def _columns(table: pa.Table, numeric: dict[str, dict], image_columns: list[str], path: Path) -> dict:
    columns = {}
    for name, spec in numeric.items():
        column = table[name].combine_chunks()
        shape = tuple(spec["shape"])
        if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or \
                pa.types.is_large_list(column.type):
            lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
            if len(lengths) and (lengths.min() != lengths.max() or (lengths[0],) != shape):
                raise DatasetError(f"{path}: column {name!r} holds {sorted(set(lengths.tolist()))} values per frame; "
                                   f"info.json gives features.{name}.shape {list(shape)}")
            values = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), *shape)
        else:
            if shape != (1,):
                raise DatasetError(f"{path}: column {name!r} holds one value per frame; info.json gives "
                                   f"features.{name}.shape {list(shape)}")
            values = column.to_numpy(zero_copy_only=False).reshape(len(column), 1)
        columns[name] = values.astype(spec["dtype"])
    columns["timestamp"] = table["timestamp"].to_numpy().astype(np.float32)
    for name in ("frame_index", "episode_index", "index", "task_index"):
        columns[name] = table[name].to_numpy().astype(np.int64)
    for name in image_columns:
        columns[f"__image__{name}"] = np.array(table[name].to_pylist(), dtype=object)
    return columns


def _empty(name: str, numeric: dict[str, dict]) -> np.ndarray:
    if name in numeric:
        return np.zeros((0, *numeric[name]["shape"]), dtype=numeric[name]["dtype"])
    return np.zeros(0, dtype=np.float32 if name == "timestamp" else np.int64)


def _read_video(root: Path, info: dict, rows: list[dict], key: str, spec: dict, timestamps: np.ndarray,
                tolerance_s: float, size: tuple[int, int] | None) -> np.ndarray:
    """Decoded frames (N, H, W, 3) of one camera for every frame of `rows`, in order."""
    starts = np.cumsum([0, *[row["length"] for row in rows]])
    out = np.zeros((starts[-1], *(size or spec["shape"][:2]), 3), dtype=np.uint8)
    by_file: dict[tuple[int, int], list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        by_file[(row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"])].append(position)
    for (chunk, file), positions in by_file.items():
        path = root / info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
        if not path.is_file():
            raise DatasetError(f"{path}: missing; episode {rows[positions[0]]['episode_index']} "
                               f"(videos/{key}/chunk_index={chunk}, file_index={file}) points there")
        frame_rows = np.concatenate([np.arange(starts[p], starts[p + 1]) for p in positions])
        times = np.concatenate([rows[p][f"videos/{key}/from_timestamp"] + timestamps[starts[p]:starts[p + 1]]
                                for p in positions]).astype(np.float64)
        order = np.argsort(times, kind="stable")
        times, frame_rows = times[order], frame_rows[order]
        filled = np.zeros(len(times), dtype=bool)
        if (*frame_size(path), 3) != tuple(spec["shape"]):
            raise DatasetError(f"{path}: frames are {(*frame_size(path), 3)}; info.json gives features.{key}.shape "
                               f"{spec['shape']}")
        for time, image in decode(path, size):
            low, high = np.searchsorted(times, [time - tolerance_s, time + tolerance_s])
            out[frame_rows[low:high]] = image
            filled[low:high] = True
            if low >= len(times):
                break
        if not filled.all():
            first = times[~filled][0]
            raise DatasetError(f"{path}: no frame within {tolerance_s} s of t = {first:.4f} s "
                               f"({int((~filled).sum())} frames of feature {key} unmatched)")
    return out


def _decode_images(cells: np.ndarray, name: str, spec: dict, root: Path, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    images = []
    for cell in cells:
        image = Image.open(io.BytesIO(cell["bytes"])).convert("RGB")
        if (image.height, image.width, 3) != tuple(spec["shape"]):
            raise DatasetError(f"{root}: images of feature {name} are {(image.height, image.width, 3)}; info.json "
                               f"gives features.{name}.shape {spec['shape']}")
        images.append(np.asarray(image if size is None else image.resize(size[::-1], Image.Resampling.BOX)))
    return np.stack(images) if images else np.zeros((0, *(size or spec["shape"][:2]), 3), dtype=np.uint8)
