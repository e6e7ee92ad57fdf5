"""Which dataset features a policy reads, their shapes, and the check that a live frame matches them.

Feature specs follow LeRobot's info.json: {"dtype": "float32", "shape": [6], "names": [...]} for vectors and
dtype "image" or "video" with shape [height, width, 3] for cameras. A policy keeps the specs of its inputs
and of `action` in policy.json and refuses frames that differ, naming the feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTION = "action"
STATE = "observation.state"
IMAGE_DTYPES = ("image", "video")


def is_image(spec: dict) -> bool:
    return spec.get("dtype") in IMAGE_DTYPES


@dataclass(frozen=True)
class InputSpec:
    """The features a policy consumes: 1-D vectors (normalized, concatenated) and camera images (uint8 HWC)."""

    vectors: tuple[tuple[str, int], ...]
    """(feature name, size) of every vector input, in the order they are concatenated."""
    images: tuple[tuple[str, tuple[int, int, int]], ...]
    """(feature name, (height, width, 3)) of every camera input."""
    action_dim: int
    """Size of the action vector."""

    @classmethod
    def from_features(cls, features: dict[str, dict], inputs: tuple[str, ...]) -> InputSpec:
        """Pick `inputs` out of a dataset's feature specs; raise naming any that is missing or malformed."""
        if not inputs:
            raise ValueError("inputs is empty: a policy needs at least one observation feature")
        if ACTION not in features:
            raise ValueError(f"the dataset has no {ACTION!r} feature; it has {sorted(features)}")
        vectors, images = [], []
        for name in inputs:
            if name not in features:
                raise ValueError(f"input feature {name!r} is not in the dataset; it has {sorted(features)}")
            shape = tuple(int(size) for size in features[name]["shape"])
            if is_image(features[name]):
                if len(shape) != 3 or shape[2] != 3:
                    raise ValueError(f"image feature {name!r} has shape {shape}; expected (height, width, 3)")
                images.append((name, shape))
            elif len(shape) == 1:
                vectors.append((name, shape[0]))
            else:
                raise ValueError(f"feature {name!r} has shape {shape}; expected a vector or an (H, W, 3) image")
        action_shape = tuple(features[ACTION]["shape"])
        if len(action_shape) != 1:
            raise ValueError(f"feature {ACTION!r} has shape {action_shape}; expected a vector")
        return cls(tuple(vectors), tuple(images), int(action_shape[0]))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.vectors) + tuple(name for name, _ in self.images)

    def check_frame(self, frame: dict) -> None:
        """Raise ValueError naming the first feature that is missing or whose shape or dtype is not the trained one."""
        for name, size in self.vectors:
            value = _get(frame, name)
            if value.shape != (size,) or not np.issubdtype(value.dtype, np.floating):
                raise ValueError(f"observation feature {name!r}: expected float vector of shape ({size},), given "
                                 f"{value.dtype} of shape {value.shape}")
        for name, shape in self.images:
            value = _get(frame, name)
            if value.shape != shape or value.dtype != np.uint8:
                raise ValueError(f"observation feature {name!r}: expected uint8 image of shape {shape}, given "
                                 f"{value.dtype} of shape {value.shape}")

    def to_dict(self) -> dict:
        return {"vectors": [[name, size] for name, size in self.vectors],
                "images": [[name, list(shape)] for name, shape in self.images], "action_dim": self.action_dim}

    @classmethod
    def from_dict(cls, values: dict) -> InputSpec:
        return cls(tuple((str(name), int(size)) for name, size in values["vectors"]),
                   tuple((str(name), tuple(int(s) for s in shape)) for name, shape in values["images"]),
                   int(values["action_dim"]))


def _get(frame: dict, name: str) -> np.ndarray:
    if name not in frame:
        raise ValueError(f"observation lacks feature {name!r} the policy was trained on; given {sorted(frame)}")
    return np.asarray(frame[name])
