"""Datasets: the in-memory Episodes contract, LeRobot's SO-101 features, and the LeRobot v3.0 layout on disk."""

from tidyarm.data.episodes import Episodes, episodes_from_frames

__all__ = ["Episodes", "episodes_from_frames"]
