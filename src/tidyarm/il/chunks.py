"""Training batches of observation histories and action chunks, padded at episode ends.

Each sample is a frame t of some episode: observations at t-n_obs+1 .. t and actions at
t+offset .. t+offset+horizon-1. Indices that fall outside the episode repeat its first or last frame
(so the network always sees a plausible value) and are flagged in `action_is_pad`, so losses can ignore
them. All frames live in memory as tensors; a batch is a handful of index gathers.
"""

from __future__ import annotations

import numpy as np
import torch

from tidyarm.il.features import ACTION
from tidyarm.il.normalize import compute_stats


class ChunkSampler:
    """Random (observation history, action chunk) batches from time-major frames and episode bounds."""

    def __init__(self, frames: dict[str, np.ndarray], bounds: list[tuple[int, int]], inputs: tuple[str, ...],
                 n_obs_steps: int, horizon: int, action_offset: int, seed: int = 0):
        if n_obs_steps < 1 or horizon < 1:
            raise ValueError(f"n_obs_steps = {n_obs_steps}, horizon = {horizon}: expected both >= 1")
        if not bounds or any(stop <= start for start, stop in bounds):
            raise ValueError(f"episode bounds {bounds[:5]}...: expected non-empty (start, stop) ranges")
        total = bounds[-1][1]
        self.tensors = {}
        for name in (*inputs, ACTION):
            if name not in frames:
                raise ValueError(f"the episodes have no frames of feature {name!r}; they have {sorted(frames)}")
            array = np.asarray(frames[name])
            if len(array) < total:
                raise ValueError(f"feature {name!r} has {len(array)} frames; the episodes need {total}")
            self.tensors[name] = torch.from_numpy(np.ascontiguousarray(array))
        self.inputs, self.n_obs_steps, self.horizon, self.action_offset = inputs, n_obs_steps, horizon, action_offset
        self.frame_index = np.concatenate([np.arange(start, stop) for start, stop in bounds])
        self.episode_start = np.concatenate([np.full(stop - start, start) for start, stop in bounds])
        self.episode_stop = np.concatenate([np.full(stop - start, stop) for start, stop in bounds])
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.frame_index)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        return self.gather(self.rng.integers(0, len(self), batch_size))

    def indices(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame indices of the observations (B, n_obs) and actions (B, horizon), and the padding mask."""
        frame, start, stop = self.frame_index[rows], self.episode_start[rows], self.episode_stop[rows]
        obs_steps = frame[:, None] + np.arange(1 - self.n_obs_steps, 1)  # (B, n_obs)
        obs_steps = np.clip(obs_steps, start[:, None], stop[:, None] - 1)
        action_steps = frame[:, None] + self.action_offset + np.arange(self.horizon)  # (B, horizon)
        is_pad = (action_steps < start[:, None]) | (action_steps >= stop[:, None])
        return obs_steps, np.clip(action_steps, start[:, None], stop[:, None] - 1), is_pad

    def relative_action_stats(self, state: str) -> dict[str, list[float]]:
        """Normalization stats of every (unpadded) chunk action minus the state of the frame it is predicted at."""
        obs_steps, action_steps, is_pad = self.indices(np.arange(len(self)))
        actions = self.tensors[ACTION].numpy()[action_steps]  # (N, horizon, A)
        relative = actions - self.tensors[state].numpy()[obs_steps[:, -1]][:, None]
        return compute_stats(relative[~is_pad])

    def gather(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Batch of these sample rows: inputs (B, n_obs, ...), action (B, horizon, A), action_is_pad (B, horizon)."""
        obs_steps, action_steps, is_pad = self.indices(rows)
        batch = {name: self.tensors[name][torch.from_numpy(obs_steps)] for name in self.inputs}
        batch[ACTION] = self.tensors[ACTION][torch.from_numpy(action_steps)].float()
        batch["action_is_pad"] = torch.from_numpy(is_pad)
        return batch
