"""Write frames to mp4 (H.264 through PyAV) and tile images into a gallery PNG."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
from PIL import Image


def write_mp4(frames: list[np.ndarray], path: str | Path, fps: float) -> Path:
    """Encode uint8 (H, W, 3) frames as H.264; written to a temp file, then renamed into place."""
    if not frames:
        raise ValueError(f"no frames to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    temp = path.with_name(f".{path.name}.tmp")
    with av.open(str(temp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        # H.264 with yuv420p needs even dimensions.
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            image = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    os.replace(temp, path)
    return path


def tile(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized uint8 images into one (rows x columns) image, row-major."""
    if not images:
        raise ValueError("no images to tile")
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    canvas = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        canvas[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return canvas


def save_png(image: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
