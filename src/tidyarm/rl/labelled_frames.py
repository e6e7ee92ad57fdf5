"""A growing dataset of (observation, action label) pairs: what DAgger and behaviour cloning fit.

Unlike a replay buffer it keeps no rewards or next observations, so image datasets cost half the memory.
Images stay uint8. Saved and restored with checkpoints (one npz, written atomically).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gymnasium
import numpy as np

from tidyarm.rl.replay import read_npz


class LabelledFrames:
    """Preallocated arrays for every key of a Dict observation space plus an `action` array."""

    def __init__(self, space: gymnasium.spaces.Dict, action_dim: int, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity = {capacity}: expected an integer >= 1")
        self.capacity, self.size = int(capacity), 0
        self._arrays = {key: np.zeros((capacity, *sub.shape), dtype=sub.dtype) for key, sub in space.spaces.items()}
        self._arrays["action"] = np.zeros((capacity, action_dim), dtype=np.float32)

    def add_batch(self, obs: dict[str, np.ndarray], actions: np.ndarray, keep: np.ndarray) -> None:
        """Append the rows of a batched observation where `keep` is True."""
        count = int(keep.sum())
        if self.size + count > self.capacity:
            raise ValueError(f"dataset full: {self.size} + {count} rows exceed capacity {self.capacity}")
        rows = slice(self.size, self.size + count)
        for key, array in self._arrays.items():
            array[rows] = (actions if key == "action" else obs[key])[keep]
        self.size += count

    def arrays(self, key: str) -> np.ndarray:
        """The filled part of one field (a view)."""
        return self._arrays[key][: self.size]

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty dataset")
        index = rng.integers(0, self.size, size=batch_size)
        obs = {key: array[index] for key, array in self._arrays.items() if key != "action"}
        return obs, self._arrays["action"][index]

    def save(self, path: Path) -> None:
        path = Path(path)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{key: self.arrays(key) for key in self._arrays})
        os.replace(temp, path)

    def load(self, path: Path) -> None:
        """Restore a saved dataset; a missing field or a wrong shape or dtype names the file and the field."""
        saved = read_npz(path)
        for key, array in self._arrays.items():
            if key not in saved:
                raise ValueError(f"{path}: field {key!r} is missing (found {sorted(saved)})")
            value = saved[key]
            if value.shape[1:] != array.shape[1:] or value.dtype != array.dtype or len(value) > self.capacity:
                raise ValueError(f"{path}: field {key!r} is {value.dtype} {value.shape}; expected {array.dtype} "
                                 f"(<= {self.capacity}, {', '.join(map(str, array.shape[1:]))})")
        self.size = len(saved["action"])
        for key, array in self._arrays.items():
            array[: self.size] = saved[key]
