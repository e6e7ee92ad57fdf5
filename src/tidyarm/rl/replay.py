"""Replay storage for off-policy RL: a ring buffer, an n-step return accumulator and RLPD-style mixed batches.

A stored transition is `(obs, action, reward, next_obs, discount, terminated)` where `reward` is already the
k-step discounted return and `discount` is gamma**k, so a learner's target is always
`reward + discount * (1 - terminated) * V(next_obs)` whatever k was. Keeping `next_obs` per transition (instead
of reading it from the following slot) costs memory but makes a time-limit boundary impossible to get wrong: the
last step of a truncated episode can never bootstrap from the next episode's first frame.
"""

from __future__ import annotations

import collections
import os
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import gymnasium
import numpy as np

Observation = np.ndarray | dict[str, np.ndarray]
Batch = dict[str, np.ndarray | dict[str, np.ndarray]]

# Name of the single observation array when the space is a Box rather than a Dict.
_BOX_KEY = ""
_SCALAR_FIELDS = ("capacity", "size", "cursor")


def _observation_layout(space: gymnasium.spaces.Space) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every observation array; a Box space has one array under `_BOX_KEY`."""
    if isinstance(space, gymnasium.spaces.Box):
        return {_BOX_KEY: (tuple(space.shape), np.dtype(space.dtype))}
    if isinstance(space, gymnasium.spaces.Dict):
        layout = {}
        for key, subspace in space.spaces.items():
            if not isinstance(subspace, gymnasium.spaces.Box):
                raise ValueError(f"observation_space[{key!r}] is {type(subspace).__name__}; expected a Box")
            layout[key] = (tuple(subspace.shape), np.dtype(subspace.dtype))
        return layout
    raise ValueError(f"observation_space is {type(space).__name__}; expected gymnasium.spaces.Box or Dict")


def _field_name(prefix: str, key: str) -> str:
    return prefix if key == _BOX_KEY else f"{prefix}/{key}"


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions in preallocated numpy arrays.

    Observations keep the space's dtype (uint8 images stay uint8; convert to float on the sampled batch).
    When full, new transitions overwrite the oldest ones.
    """

    def __init__(self, observation_space: gymnasium.spaces.Box | gymnasium.spaces.Dict, action_dim: int,
                 capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity={capacity}; expected an integer >= 1")
        if action_dim < 1:
            raise ValueError(f"action_dim={action_dim}; expected an integer >= 1")
        self.capacity = int(capacity)
        self.action_dim = int(action_dim)
        self._layout = _observation_layout(observation_space)
        self._is_dict = isinstance(observation_space, gymnasium.spaces.Dict)
        self._arrays: dict[str, np.ndarray] = {}
        for key, (shape, dtype) in self._layout.items():
            for prefix in ("obs", "next_obs"):
                self._arrays[_field_name(prefix, key)] = np.zeros((self.capacity, *shape), dtype=dtype)
        self._arrays["action"] = np.zeros((self.capacity, self.action_dim), dtype=np.float32)
        self._arrays["reward"] = np.zeros((self.capacity,), dtype=np.float32)
        self._arrays["discount"] = np.zeros((self.capacity,), dtype=np.float32)
        self._arrays["terminated"] = np.zeros((self.capacity,), dtype=bool)
        self._size = 0
        self._cursor = 0  # slot the next transition goes to

    def __len__(self) -> int:
        return self._size

    def _observation_items(self, prefix: str, obs: Observation):
        """(array name, value) pairs for one observation, checking Dict keys."""
        if not self._is_dict:
            return [(_field_name(prefix, _BOX_KEY), obs)]
        if set(obs) != set(self._layout):
            raise ValueError(f"{prefix} keys {sorted(obs)}; expected {sorted(self._layout)}")
        return [(_field_name(prefix, key), obs[key]) for key in self._layout]

    def add(self, obs: Observation, action: np.ndarray, reward: float, next_obs: Observation, discount: float,
            terminated: bool) -> None:
        """Store one transition; `reward` is the (n-step) return and `discount` is gamma**k."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.action_dim,):
            raise ValueError(f"action shape {action.shape}; expected ({self.action_dim},)")
        slot = self._cursor
        for name, value in self._observation_items("obs", obs) + self._observation_items("next_obs", next_obs):
            self._arrays[name][slot] = value
        self._arrays["action"][slot] = action
        self._arrays["reward"][slot] = reward
        self._arrays["discount"][slot] = discount
        self._arrays["terminated"][slot] = terminated
        self._cursor = (slot + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Uniformly sample `batch_size` transitions (with replacement); dict observations come back as dicts."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer; add transitions first")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; expected an integer >= 1")
        indices = rng.integers(0, self._size, size=batch_size)
        batch: Batch = {}
        for prefix in ("obs", "next_obs"):
            if self._is_dict:
                batch[prefix] = {key: self._arrays[_field_name(prefix, key)][indices] for key in self._layout}
            else:
                batch[prefix] = self._arrays[prefix][indices]
        for name in ("action", "reward", "discount", "terminated"):
            batch[name] = self._arrays[name][indices]
        return batch

    def observations(self) -> Observation:
        """The stored observations (views of the filled part): an array, or a dict of arrays for Dict spaces."""
        if self._is_dict:
            return {key: self._arrays[_field_name("obs", key)][: self._size] for key in self._layout}
        return self._arrays["obs"][: self._size]

    def actions(self) -> np.ndarray:
        return self._arrays["action"][: self._size]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat dict of numpy arrays (views, not copies): the filled part of every field plus capacity, size, cursor."""
        state = {name: array[: self._size] for name, array in self._arrays.items()}
        state["capacity"] = np.array(self.capacity, dtype=np.int64)
        state["size"] = np.array(self._size, dtype=np.int64)
        state["cursor"] = np.array(self._cursor, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], source: str = "state_dict") -> None:
        """Restore from `state_dict()` output; `source` names the origin (e.g. a file) in error messages."""
        expected = set(self._arrays) | set(_SCALAR_FIELDS)
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(f"{source}: fields do not match this buffer (missing {missing}, unexpected {extra})")
        capacity, size, cursor = (int(state[name]) for name in _SCALAR_FIELDS)
        if not 0 <= size <= capacity:
            raise ValueError(f"{source}: field 'size' is {size}; expected 0..{capacity}")
        if size > self.capacity:
            raise ValueError(f"{source}: field 'size' is {size}; this buffer has capacity {self.capacity}")
        if not 0 <= cursor < capacity or (size < capacity and cursor != size):
            raise ValueError(f"{source}: field 'cursor' is {cursor}; inconsistent with size {size}")
        for name, array in self._arrays.items():
            value = state[name]
            if value.shape != (size, *array.shape[1:]):
                raise ValueError(f"{source}: field {name!r} has shape {value.shape}; "
                                 f"expected {(size, *array.shape[1:])}")
            if value.dtype != array.dtype:
                raise ValueError(f"{source}: field {name!r} has dtype {value.dtype}; expected {array.dtype}")
        if capacity == self.capacity:  # same layout: restore exactly, so sampling continues identically
            order, self._cursor = np.arange(size), cursor
        else:  # oldest first, so a saved buffer also loads into a larger one (a resumed run with more steps)
            order = np.roll(np.arange(size), -cursor) if size == capacity else np.arange(size)
            self._cursor = size % self.capacity
        for name, array in self._arrays.items():
            array[:size] = state[name][order]
        self._size = size

    def save(self, path: str | os.PathLike) -> None:
        """Write the buffer to one `.npz` file atomically, so a crash never leaves a half-written file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                np.savez(file, **self.state_dict())
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            # Re-raised: this only removes the partial temp file so failed saves leave no litter.
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike) -> None:
        """Read a file written by `save`; raises ValueError naming the file and the first mismatching field."""
        self.load_state_dict(read_npz(path), source=str(path))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array in an .npz file; a missing, truncated or foreign file raises an error naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable replay file ({error}); it is corrupt or truncated") from error


class NStepTransition(NamedTuple):
    """One finished transition, ready for `ReplayBuffer.add(*transition)`."""

    obs: Observation
    action: np.ndarray
    reward: float  # discounted sum of the k rewards
    next_obs: Observation  # observation after the k-th step
    discount: float  # gamma**k
    terminated: bool  # True only when the episode really ended inside these k steps


def _copy_observation(obs: Observation) -> Observation:
    # Some envs reuse their observation arrays in place; a pending step must not change under us.
    if isinstance(obs, dict):
        return {key: np.array(value, copy=True) for key, value in obs.items()}
    return np.array(obs, copy=True)


class NStepAccumulator:
    """Turns single env steps into n-step transitions without ever mixing two episodes.

    - `terminated`: every pending step is flushed with terminated=True (its return stops at the terminal state).
    - `truncated` (time limit): every pending step is flushed with terminated=False, so each bootstraps from the
      final `next_obs` with gamma**k for its own k (< n for the last ones).
    """

    def __init__(self, n: int, gamma: float):
        if n < 1:
            raise ValueError(f"n={n}; expected an integer >= 1")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma={gamma}; expected 0 <= gamma <= 1")
        self.n = int(n)
        self.gamma = float(gamma)
        self._pending: collections.deque[tuple[Observation, np.ndarray, float]] = collections.deque()

    def __len__(self) -> int:
        return len(self._pending)

    def reset(self) -> None:
        """Drop pending steps, e.g. when an episode is abandoned without a terminated/truncated step."""
        self._pending.clear()

    def push(self, obs: Observation, action: np.ndarray, reward: float, next_obs: Observation, terminated: bool,
             truncated: bool) -> list[NStepTransition]:
        """Add one env step; return the transitions it completes (possibly none)."""
        action = np.array(action, dtype=np.float32, copy=True)
        self._pending.append((_copy_observation(obs), action, float(reward)))
        if terminated or truncated:
            next_obs = _copy_observation(next_obs)
            return [self._pop_oldest(next_obs, bool(terminated)) for _ in range(len(self._pending))]
        if len(self._pending) == self.n:
            return [self._pop_oldest(_copy_observation(next_obs), False)]
        return []

    def _pop_oldest(self, next_obs: Observation, terminated: bool) -> NStepTransition:
        steps = len(self._pending)
        discounted_return = 0.0
        for k, (_, _, reward) in enumerate(self._pending):
            discounted_return += self.gamma**k * reward
        obs, action, _ = self._pending.popleft()
        return NStepTransition(obs, action, discounted_return, next_obs, self.gamma**steps, terminated)


def _concatenate(first, second):
    if isinstance(first, dict):
        return {key: np.concatenate([first[key], second[key]]) for key in first}
    return np.concatenate([first, second])


def sample_mixed(online: ReplayBuffer, offline: ReplayBuffer | None, batch_size: int, rng: np.random.Generator,
                 offline_fraction: float = 0.5) -> Batch:
    """RLPD-style batch: `offline_fraction` of it from `offline` (demos), the rest from `online`.

    Falls back to an all-online batch when `offline` is None or empty. Rows are online first, then offline.
    """
    if not 0.0 <= offline_fraction <= 1.0:
        raise ValueError(f"offline_fraction={offline_fraction}; expected 0 <= offline_fraction <= 1")
    if offline is None or len(offline) == 0:
        return online.sample(batch_size, rng)
    offline_count = int(round(batch_size * offline_fraction))
    online_count = batch_size - offline_count
    if online_count == 0:
        return offline.sample(batch_size, rng)
    if offline_count == 0:
        return online.sample(batch_size, rng)
    online_batch = online.sample(online_count, rng)
    offline_batch = offline.sample(offline_count, rng)
    batch = {key: _concatenate(online_batch[key], offline_batch[key]) for key in online_batch}
    batch["demo"] = np.arange(batch_size) >= online_count  # marks the offline rows (for a BC term)
    return batch
