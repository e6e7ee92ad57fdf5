"""Checkpoints and exported policies: safetensors weights + JSON, written atomically.

A checkpoint is a directory `<run>/checkpoint/` holding agent.safetensors (everything to resume),
replay npz files, and meta.json (step, versions, spaces, RNG states) written last. It is assembled in
a temporary directory and swapped in with renames, so a kill at any moment leaves either the new or
the previous checkpoint (`checkpoint.old`) complete.

An exported policy is `policy.safetensors` (actor only) + `policy.json` (how to rebuild env and net).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CHECKPOINT, PREVIOUS = "checkpoint", "checkpoint.old"


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (temp file, fsync, rename)."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the file is corrupt or truncated") from error


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(temp))
    os.replace(temp, path)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable safetensors file ({error}); it is corrupt or truncated") from error


def save_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], buffers: dict, meta: dict) -> Path:
    """Write agent tensors, replay buffers ({name: ReplayBuffer}) and meta into <run_dir>/checkpoint."""
    temp = run_dir / f".{CHECKPOINT}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    save_tensors(temp / "agent.safetensors", tensors)
    for name, buffer in buffers.items():
        buffer.save(temp / f"{name}.npz")
    write_json(temp / "meta.json", meta)  # last: its presence marks a complete checkpoint
    current, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    if current.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(current, previous)
    os.replace(temp, current)
    shutil.rmtree(previous, ignore_errors=True)
    return current


def find_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint in a run directory (falls back to the one being replaced)."""
    for name in (CHECKPOINT, PREVIOUS):
        if (run_dir / name / "meta.json").is_file():
            return run_dir / name
    raise FileNotFoundError(f"no complete checkpoint in {run_dir} (looked for {CHECKPOINT}/meta.json)")


def check_meta(meta: dict, expected: dict, source: Path) -> None:
    """Raise ValueError naming the first field whose saved value differs from what this run expects."""
    for key, value in expected.items():
        if meta.get(key) != value:
            raise ValueError(f"{source}: field {key!r} is {meta.get(key)!r} in the checkpoint but this run "
                             f"expects {value!r}")


def restore_agent(path: Path, agent) -> None:
    """Load <checkpoint>/agent.safetensors into `agent` and restore torch's random state saved beside it."""
    tensors = load_tensors(path / "agent.safetensors")
    torch.set_rng_state(tensors.pop("torch_rng_state"))
    try:
        agent.load_state_dict(tensors)
    except ValueError as error:
        raise ValueError(f"{path / 'agent.safetensors'}: {error}") from error
