"""LeRobot v3.0 datasets: our writer and reader, a dataset written by LeRobot itself, bad input, crash safety."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tidyarm.data.lerobot_v3 import DatasetError, read_tasks
from tidyarm.data.reader import read_dataset
from tidyarm.data.writer import DatasetWriter

# Written by LeRobot 0.4.4's own LeRobotDataset writer (bench/lerobot_compat.py --make-fixture): 4 episodes at
# 30 fps, data files rotated over two chunks, two episodes per video file, AV1 video.
FIXTURE = Path(__file__).parent / "data" / "lerobot_v3_fixture"
FIXTURE_LENGTHS = (12, 9, 15, 10)
FIXTURE_TASKS = ("Pick up the cube.", "Put the cube in the bowl.")
NAMES = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"]
FEATURES = {"observation.state": {"dtype": "float32", "shape": [6], "names": NAMES},
            "action": {"dtype": "float32", "shape": [6], "names": NAMES},
            "observation.images.front": {"dtype": "video", "shape": [64, 64, 3],
                                         "names": ["height", "width", "channels"]}}


def make_frame(episode: int, frame: int) -> dict:
    """The fixture's rule for frame contents (same as bench/lerobot_compat.py)."""
    state = np.array([episode * 100 + frame + joint / 8 for joint in range(6)], dtype=np.float32)
    image = np.empty((64, 64, 3), dtype=np.uint8)
    image[:] = [(40 * episode + 10 * frame + 60 * channel) % 200 + 20 for channel in range(3)]
    return {"observation.state": state, "action": state + 0.5, "observation.images.front": image}


def check_contents(episodes, lengths, tasks) -> None:
    assert [stop - start for start, stop in episodes.episode_bounds()] == list(lengths)
    for episode, (start, stop) in enumerate(episodes.episode_bounds()):
        assert episodes.tasks[episodes.frames["task_index"][start]] == tasks[episode % len(tasks)]
        for offset, row in enumerate(range(start, stop)):
            expected = make_frame(episode, offset)
            np.testing.assert_array_equal(episodes.frames["observation.state"][row], expected["observation.state"])
            np.testing.assert_array_equal(episodes.frames["action"][row], expected["action"])
            image_error = np.abs(episodes.frames["observation.images.front"][row].astype(int)
                                 - expected["observation.images.front"].astype(int))
            assert image_error.mean() < 3.0, (episode, offset, image_error.mean())
        np.testing.assert_array_equal(episodes.frames["frame_index"][start:stop], np.arange(stop - start))
        np.testing.assert_allclose(episodes.frames["timestamp"][start:stop], np.arange(stop - start) / episodes.fps,
                                   atol=1e-6)


def write(root: Path, lengths, tasks, **limits) -> None:
    with DatasetWriter(root, 30, FEATURES, **limits) as writer:
        for episode, length in enumerate(lengths):
            for frame in range(length):
                writer.add_frame(make_frame(episode, frame))
            writer.save_episode(tasks[episode % len(tasks)])


def test_reads_a_dataset_written_by_lerobot():
    episodes = read_dataset(FIXTURE)
    assert episodes.fps == 30 and episodes.num_episodes == 4
    check_contents(episodes, FIXTURE_LENGTHS, FIXTURE_TASKS)
    assert read_dataset(FIXTURE, episodes=[2]).episode_ids == [2]
    without_video = read_dataset(FIXTURE, load_videos=False)
    assert "observation.images.front" not in without_video.frames
    small = read_dataset(FIXTURE, image_size=32)  # resized while decoding (area average)
    assert small.features["observation.images.front"]["shape"] == [32, 32, 3]
    expected = make_frame(0, 5)["observation.images.front"][:32, :32].astype(int)
    assert np.abs(small.frames["observation.images.front"][5].astype(int) - expected).mean() < 4.0


def test_reads_lerobot_image_dtype_frames():
    """LeRobot's `image` dtype (PNG bytes inside the data parquet files, no video), written by LeRobot."""
    episodes = read_dataset(FIXTURE.with_name("lerobot_v3_image_fixture"))
    assert episodes.features["observation.images.front"]["dtype"] == "image"
    check_contents(episodes, FIXTURE_LENGTHS[:2], FIXTURE_TASKS)
    png_frame = episodes.frames["observation.images.front"][12]  # lossless: exactly what was written
    np.testing.assert_array_equal(png_frame, make_frame(1, 0)["observation.images.front"])
    small = read_dataset(FIXTURE.with_name("lerobot_v3_image_fixture"), image_size=(16, 32))
    np.testing.assert_array_equal(small.frames["observation.images.front"][12],
                                  make_frame(1, 0)["observation.images.front"][:16, :32])


def test_round_trip_across_rotated_files_and_chunks(tmp_path):
    write(tmp_path / "rotated", (5, 7, 4, 6, 3), FIXTURE_TASKS, chunks_size=2, data_files_size_in_mb=0.0001,
          video_files_size_in_mb=0.0001)
    check_contents(read_dataset(tmp_path / "rotated"), (5, 7, 4, 6, 3), FIXTURE_TASKS)
    assert (tmp_path / "rotated/data/chunk-002/file-000.parquet").is_file()  # 5 episodes, 2 files a chunk
    assert (tmp_path / "rotated/videos/observation.images.front/chunk-001/file-001.mp4").is_file()
    write(tmp_path / "packed", (5, 7, 4), FIXTURE_TASKS)
    check_contents(read_dataset(tmp_path / "packed"), (5, 7, 4), FIXTURE_TASKS)
    assert len(list((tmp_path / "packed/videos").rglob("*.mp4"))) == 1  # many episodes in one video file
    write(tmp_path / "h264", (5, 7), FIXTURE_TASKS, vcodec="libx264")  # B-frames: packets out of display order
    check_contents(read_dataset(tmp_path / "h264"), (5, 7), FIXTURE_TASKS)


def test_metadata_follows_lerobot(tmp_path):
    write(tmp_path / "ds", (5, 7), FIXTURE_TASKS)
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "so101_follower"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 12, 2)
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "av1"
    assert list(info["features"])[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    state = np.concatenate([[make_frame(e, f)["observation.state"] for f in range(n)] for e, n in enumerate((5, 7))])
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), rtol=1e-6)
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["observation.state"]["count"] == [12]
    assert read_tasks(tmp_path / "ds") == list(FIXTURE_TASKS)
    columns = pq.read_schema(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").names
    for column in ("dataset_from_index", "videos/observation.images.front/from_timestamp",
                   "stats/observation.state/q99", "meta/episodes/file_index"):
        assert column in columns


def test_bad_datasets_name_the_file_and_field(tmp_path):
    with pytest.raises(DatasetError, match=r"meta/info\.json: missing"):
        read_dataset(tmp_path / "nothing")
    write(tmp_path / "ds", (4, 3), FIXTURE_TASKS)
    info_path = tmp_path / "ds/meta/info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(DatasetError, match=r"info\.json: codebase_version is 'v2.1'.*convert_dataset_v21_to_v30"):
        read_dataset(tmp_path / "ds")
    bad_shape = json.loads(json.dumps(info))
    bad_shape["features"]["observation.state"]["shape"] = [7]
    info_path.write_text(json.dumps(bad_shape))
    with pytest.raises(DatasetError, match=r"file-000\.parquet: column 'observation\.state'.*features\.observation"):
        read_dataset(tmp_path / "ds")
    missing_feature = json.loads(json.dumps(info))
    missing_feature["features"]["observation.velocity"] = {"dtype": "float32", "shape": [6], "names": None}
    info_path.write_text(json.dumps(missing_feature))
    with pytest.raises(DatasetError, match=r"file-000\.parquet: column\(s\) \['observation\.velocity'\] missing"):
        read_dataset(tmp_path / "ds")
    info_path.write_text(json.dumps(info))
    (tmp_path / "ds/videos/observation.images.front/chunk-000/file-000.mp4").unlink()
    with pytest.raises(DatasetError, match=r"file-000\.mp4: missing; episode 0"):
        read_dataset(tmp_path / "ds")
    (tmp_path / "ds/data/chunk-000/file-000.parquet").unlink()
    with pytest.raises(DatasetError, match=r"data/chunk-000/file-000\.parquet: missing"):
        read_dataset(tmp_path / "ds", load_videos=False)


def test_writer_refuses_bad_frames_and_discards(tmp_path):
    with pytest.raises(ValueError, match="not empty"):
        DatasetWriter(FIXTURE, 30, FEATURES)
    with DatasetWriter(tmp_path / "ds", 30, FEATURES) as writer:
        frame = make_frame(0, 0)
        with pytest.raises(ValueError, match=r"'observation.state'.*shape \(5,\); expected \(6,\)"):
            writer.add_frame({**frame, "observation.state": np.zeros(5)})
        with pytest.raises(ValueError, match=r"missing features \['action'\]"):
            writer.add_frame({k: v for k, v in frame.items() if k != "action"})
        with pytest.raises(ValueError, match="NaN"):
            writer.add_frame({**frame, "action": np.full(6, np.nan)})
        writer.add_frame(frame)
        writer.discard_episode()
        with pytest.raises(ValueError, match="no frames"):
            writer.save_episode("task")
        assert read_dataset(tmp_path / "ds").num_episodes == 0  # an empty dataset opens
        for index in range(3):
            writer.add_frame(make_frame(0, index))
        writer.save_episode(FIXTURE_TASKS[0])
    check_contents(read_dataset(tmp_path / "ds"), (3,), FIXTURE_TASKS)


KILLED_WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from test_lerobot_v3 import FEATURES, make_frame
from tidyarm.data.writer import DatasetWriter
writer = DatasetWriter({root!r}, 30, FEATURES)
for episode in range(100):
    for frame in range(6):
        writer.add_frame(make_frame(episode, frame))
        if episode == 2 and frame == 3:
            print("mid-episode", flush=True)
            time.sleep(60)
    writer.save_episode("Pick up the cube.")
"""


def kill_writer_mid_episode(root: Path) -> None:
    """Run KILLED_WRITER in a subprocess and SIGKILL it in the middle of its third episode."""
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), root=str(root))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "mid-episode"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def test_sigkill_mid_episode_keeps_finished_episodes(tmp_path):
    root = tmp_path / "ds"
    kill_writer_mid_episode(root)
    episodes = read_dataset(root)
    check_contents(episodes, (6, 6), ("Pick up the cube.",))


def test_resume_after_a_kill_and_after_an_interrupted_save(tmp_path):
    root = tmp_path / "ds"
    kill_writer_mid_episode(root)
    with DatasetWriter(root, 30, FEATURES, resume=True) as writer:  # episodes 0, 1 on disk; add 2, 3
        for episode in (2, 3):
            for frame in range(6):
                writer.add_frame(make_frame(episode, frame))
            writer.save_episode("Pick up the cube.")
    check_contents(read_dataset(root), (6, 6, 6, 6), ("Pick up the cube.",))
    # An interrupted save: everything written but info.json, whose totals still say 4 episodes.
    info = (root / "meta/info.json").read_text()
    with DatasetWriter(root, 30, FEATURES, resume=True) as writer:
        for frame in range(6):
            writer.add_frame(make_frame(9, frame))
        writer.save_episode("Pick up the cube.")
    (root / "meta/info.json").write_text(info)
    with DatasetWriter(root, 30, FEATURES, resume=True) as writer:  # drops the uncommitted rows and files
        for frame in range(6):
            writer.add_frame(make_frame(4, frame))
        writer.save_episode("Pick up the cube.")
    check_contents(read_dataset(root), (6,) * 5, ("Pick up the cube.",))
    data_rows = sum(pq.read_metadata(path).num_rows for path in (root / "data").rglob("*.parquet"))
    assert data_rows == 30  # no orphan rows left for a positional reader (LeRobot's) to trip over
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [30]
    with pytest.raises(ValueError, match=r"features differ.*observation.state"):
        DatasetWriter(root, 30, {**FEATURES, "observation.state": {"dtype": "float32", "shape": [7]}}, resume=True)
