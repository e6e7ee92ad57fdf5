"""Camera streams as mp4 through PyAV: encode an episode's frames, append it to a growing file, decode.

LeRobot's recorder encodes with libsvtav1 (AV1), yuv420p, a keyframe every 2 frames and crf 30, so a
single frame can be decoded without walking a long GOP; we use the same settings by default and H.264
(libx264) on request. Many episodes share one mp4: appending remuxes (copies packets, no re-encoding)
the existing file and the new segment, shifted to start where the file ended, into a temp file that
then replaces the old one, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODECS = ("libsvtav1", "libx264")
PIX_FMT = "yuv420p"
GOP = 2
CRF = 30


class SegmentEncoder:
    """Encodes one camera's frames of one episode into an mp4 as they arrive."""

    def __init__(self, path: Path, fps: float, height: int, width: int, codec: str = "libsvtav1"):
        if codec not in CODECS:
            raise ValueError(f"video codec {codec!r}: expected one of {list(CODECS)}")
        # SVT-AV1 prints a banner per encoder to stderr unless told otherwise (its own env variable).
        os.environ.setdefault("SVT_LOG", "1")
        self.path, self.shape, self.frames = Path(path), (height, width, 3), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.time_base = Fraction(fps).limit_denominator(1000) ** -1
        options = {"g": str(GOP), "crf": str(CRF)}
        if codec == "libsvtav1":
            options["preset"] = "12"  # fastest preset, as LeRobot's default
        self.container = av.open(str(self.path), mode="w", format="mp4")
        self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), options=options)
        self.stream.height, self.stream.width, self.stream.pix_fmt = height, width, PIX_FMT

    def add(self, image: np.ndarray) -> None:
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"video frame {image.dtype} {image.shape}; expected uint8 {self.shape}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = self.frames, self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> int:
        """Flush and close; returns the number of frames written."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        return self.frames

    def cancel(self) -> None:
        try:
            self.close()  # flushing first keeps the encoder from complaining about an unfinished stream
        finally:
            self.path.unlink(missing_ok=True)


def append_segment(target: Path, segment: Path, start_s: float) -> None:
    """Make `target` hold its own frames followed by `segment`'s, shifted to begin at `start_s` seconds.

    The segment file is consumed. A missing target simply becomes the segment.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(segment, target)
        return
    temp = target.with_name(f".{target.name}.tmp")
    with av.open(str(target)) as old, av.open(str(segment)) as new, \
            av.open(str(temp), mode="w", format="mp4") as out:
        old_stream = old.streams.video[0]
        stream = out.add_stream_from_template(old_stream, opaque=True)  # copy packets, no encoder
        stream.time_base = old_stream.time_base
        _copy_packets(old, old_stream, out, stream, offset=0)
        new_stream = new.streams.video[0]
        _copy_packets(new, new_stream, out, stream, offset=round(start_s / new_stream.time_base))
    os.replace(temp, target)
    segment.unlink()


def _copy_packets(source, source_stream, out, stream, offset: int) -> None:
    for packet in source.demux(source_stream):
        if packet.dts is None:  # the demuxer's end-of-stream marker
            continue
        packet.pts += offset
        packet.dts += offset
        packet.stream = stream
        out.mux(packet)


def duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration / av.time_base)


def video_info(path: Path) -> dict:
    """The `info` block LeRobot stores with a video feature in info.json."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {"video.height": stream.height, "video.width": stream.width,
                "video.codec": stream.codec_context.codec.canonical_name,
                "video.pix_fmt": stream.pix_fmt, "video.is_depth_map": False,
                "video.fps": int(stream.base_rate), "video.channels": 3, "has_audio": len(container.streams.audio) > 0}


def frame_size(path: Path) -> tuple[int, int]:
    """(height, width) of the file's video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.height, stream.width


def decode(path: Path, size: tuple[int, int] | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, uint8 (H, W, 3) RGB frame) for every frame of the file, in order; `size` (height,
    width) resizes each frame by area averaging inside the decoder (cheap, and keeps memory small)."""
    resize = {} if size is None else {"height": size[0], "width": size[1], "interpolation": "AREA"}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield float(frame.time), frame.to_ndarray(format="rgb24", **resize)
