"""ClassifierReward: the env's reward and termination come from a success classifier over camera frames.

What a real robot has is camera frames and no success signal, so this wrapper reads only the observation's
camera frames: never info["success"], info["reward_terms"] or info["privileged"] (a test runs it on an env
whose info lies). The env's own reward is dropped.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from tidyarm.reward.classifier import RewardClassifier


class ClassifierReward(gym.Wrapper):
    """reward = 1.0 when the classifier says success (probability >= threshold) for `success_frames`
    consecutive frames, else 0.0; `terminated` when that happens and `terminate_on_success` (the env's own
    terminations, e.g. the cube fell off the table, still count). info gains "classifier_probability",
    "classifier_success" (this frame) and "classifier_streak" (consecutive success frames so far).

    Works on So101Env pixels / state+pixels observations and on any env whose Dict observations carry the
    classifier's camera keys (uint8 frames at its image size or a multiple of it).
    """

    def __init__(self, env: gym.Env, classifier: RewardClassifier, threshold: float | None = None,
                 terminate_on_success: bool = True, success_frames: int = 1):
        super().__init__(env)
        if success_frames < 1:
            raise ValueError(f"success_frames = {success_frames}: expected at least 1 consecutive frame")
        threshold = classifier.threshold if threshold is None else float(threshold)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold = {threshold}: expected a probability strictly between 0 and 1")
        space = env.observation_space
        keys = space.spaces if isinstance(space, gym.spaces.Dict) else {}
        missing = [camera for camera in classifier.config.cameras if camera not in keys]
        if missing:
            raise ValueError(f"the env's observations lack camera(s) {missing} that the classifier reads; "
                             f"observation space: {space}")
        self.classifier, self.threshold = classifier, threshold
        self.terminate_on_success, self.success_frames = terminate_on_success, int(success_frames)
        self.streak = 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.streak = 0
        return obs, info

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        probability = float(self.classifier.probability(obs)[0])
        success_frame = probability >= self.threshold
        self.streak = self.streak + 1 if success_frame else 0
        success = self.streak >= self.success_frames
        info = {**info, "classifier_probability": probability, "classifier_success": bool(success_frame),
                "classifier_streak": self.streak}
        return obs, float(success), bool(terminated or (self.terminate_on_success and success)), truncated, info


def classified_success(probabilities: np.ndarray, threshold: float, success_frames: int = 1) -> np.ndarray:
    """Per-frame wrapper decisions for a sequence of probabilities (one episode): what the wrapper's reward
    would be at each step. For offline relabelling of recorded episodes."""
    streak, out = 0, np.zeros(len(probabilities), dtype=bool)
    for index, probability in enumerate(probabilities):
        streak = streak + 1 if probability >= threshold else 0
        out[index] = streak >= success_frames
    return out
