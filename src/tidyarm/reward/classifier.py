"""RewardClassifier: P(success) from camera frames, and its checkpoint (safetensors + JSON).

A small conv net (rl/encoder.py's ImageEncoder, every camera's channels stacked) with a two-layer head that
outputs one logit. Frames arrive as the env gives them: uint8 (H, W, 3) or batched (B, H, W, 3) per camera;
frames an integer multiple of the classifier's size are area-averaged down first, as the env's supersample
does, so a classifier at 32 px reads a 64-px camera without a second renderer.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tidyarm.rl.checkpoint import load_tensors, read_json, save_tensors, write_json
from tidyarm.rl.encoder import ImageEncoder, stack_cameras
from tidyarm.sim.env import CAMERAS
from tidyarm.sim.tasks import TASKS

WEIGHTS, CONFIG = "classifier.safetensors", "classifier.json"


@dataclass(frozen=True)
class ClassifierConfig:
    """What the classifier looks at and how big it is; saved beside its weights."""

    task: str = "lift"
    """Task whose success it judges: reach, lift or place."""
    cameras: tuple[str, ...] = ("front", "wrist")
    """Cameras it reads, in this order (front, wrist)."""
    image_size: int = 32
    """Height and width (px) the frames are area-averaged to before the conv net."""
    filters: int = 32
    """Channels of every conv layer."""
    hidden: int = 64
    """Width of the head's hidden layer."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid: {list(TASKS)}")
        if not self.cameras or any(camera not in CAMERAS for camera in self.cameras):
            raise ValueError(f"cameras {list(self.cameras)}: expected one or more of {list(CAMERAS)}")
        if not 8 <= self.image_size <= 128:
            raise ValueError(f"image_size = {self.image_size}: expected 8 .. 128 pixels")
        if self.filters < 1 or self.hidden < 1:
            raise ValueError(f"filters = {self.filters}, hidden = {self.hidden}: expected positive sizes")

    def to_dict(self) -> dict:
        return {**asdict(self), "cameras": list(self.cameras)}

    @classmethod
    def from_dict(cls, values: dict) -> ClassifierConfig:
        unknown = set(values) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"unknown classifier config field(s) {sorted(unknown)}")
        return cls(**{**values, "cameras": tuple(values.get("cameras", cls.cameras))})


class RewardClassifier(nn.Module):
    """images -> success logit. `probability(obs)` takes env observations; `threshold` turns it into a label."""

    def __init__(self, config: ClassifierConfig, threshold: float = 0.5):
        super().__init__()
        self.config, self.threshold = config, float(threshold)
        self.encoder = ImageEncoder(3 * len(config.cameras), config.image_size, config.filters)
        self.head = nn.Sequential(nn.Linear(self.encoder.repr_dim, config.hidden), nn.ReLU(),
                                  nn.Linear(config.hidden, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3 * cameras, S, S) in [0, 1] -> logits (B,)."""
        return self.head(self.encoder(images)).squeeze(-1)

    def prepare(self, obs: dict) -> torch.Tensor:
        """(B, 3 * cameras, S, S) floats from an observation dict holding each camera's uint8 frames,
        unbatched (H, W, 3) or batched (B, H, W, 3), H = W = a multiple of image_size."""
        size, frames = self.config.image_size, {}
        for camera in self.config.cameras:
            if camera not in obs:
                raise ValueError(f"observation has no camera {camera!r} (keys {sorted(obs)}); this classifier "
                                 f"reads {list(self.config.cameras)}")
            image = torch.as_tensor(np.asarray(obs[camera]))
            if image.dim() == 3:
                image = image[None]
            height, width = image.shape[1:3] if image.dim() == 4 else (0, 0)
            if image.dtype != torch.uint8 or image.dim() != 4 or image.shape[-1] != 3 or height != width \
                    or height % size:
                raise ValueError(f"camera {camera!r} frame is {image.dtype} {tuple(image.shape)}; expected uint8 "
                                 f"(H, W, 3) or (B, H, W, 3) with H = W a multiple of {size}")
            frames[camera] = image
        images = stack_cameras(frames, self.config.cameras)
        factor = images.shape[-1] // size
        # Area average as the env's supersample does (the classifier was trained on such thumbnails).
        return F.avg_pool2d(images, factor) if factor > 1 else images

    @torch.no_grad()
    def probability(self, obs: dict) -> np.ndarray:
        """P(success) per frame, (B,) float32 (B = 1 for an unbatched observation)."""
        was_training = self.training
        self.eval()
        probability = torch.sigmoid(self(self.prepare(obs))).numpy().astype(np.float32)
        self.train(was_training)
        return probability


def save_classifier(classifier: RewardClassifier, directory: str | Path, extra: dict | None = None) -> Path:
    """Write classifier.safetensors and classifier.json (config, threshold, extra such as metrics) atomically;
    the JSON goes last, so a directory with a JSON always has matching weights."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(directory / WEIGHTS, classifier.state_dict())
    payload = {"config": classifier.config.to_dict(), "threshold": classifier.threshold,
               "versions": {"torch": torch.__version__, "python": platform.python_version()}, **(extra or {})}
    write_json(directory / CONFIG, payload)
    return directory


def load_classifier(directory: str | Path, task: str | None = None, cameras: tuple[str, ...] | None = None,
                    image_size: int | None = None) -> RewardClassifier:
    """Load a saved classifier; `task`, `cameras` and `image_size`, when given, must match what it was
    trained for (a ValueError names the field). image_size may also be a multiple of the classifier's."""
    directory = Path(directory)
    payload = read_json(directory / CONFIG)
    config = ClassifierConfig.from_dict(payload["config"])
    if task is not None and task != config.task:
        raise ValueError(f"{directory}: classifier task is {config.task!r}; expected {task!r}")
    if cameras is not None and tuple(cameras) != config.cameras:
        raise ValueError(f"{directory}: classifier cameras are {list(config.cameras)}; expected {list(cameras)}")
    if image_size is not None and (image_size < config.image_size or image_size % config.image_size):
        raise ValueError(f"{directory}: classifier image_size is {config.image_size}; the frames given are "
                         f"{image_size} px (expected {config.image_size} or a multiple of it)")
    classifier = RewardClassifier(config, payload["threshold"])
    state = load_tensors(directory / WEIGHTS)
    expected = classifier.state_dict()
    for name, tensor in expected.items():
        if name not in state or state[name].shape != tensor.shape:
            found = tuple(state[name].shape) if name in state else "missing"
            raise ValueError(f"{directory / WEIGHTS}: tensor {name!r} is {found}; expected {tuple(tensor.shape)}")
    classifier.load_state_dict(state)
    classifier.eval()
    return classifier


def describe(directory: str | Path) -> str:
    """One line about a saved classifier (task, cameras, size, threshold, test F1 if recorded)."""
    payload = json.loads((Path(directory) / CONFIG).read_text())
    config, test = payload["config"], payload.get("metrics", {}).get("test", {})
    f1 = f", test F1 {test['f1']:.3f}" if "f1" in test else ""
    return (f"{config['task']} classifier on {'+'.join(config['cameras'])} at {config['image_size']} px, "
            f"threshold {payload['threshold']:.2f}{f1}")
