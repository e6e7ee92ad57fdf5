"""The SO-101 world: scene, tasks, control, randomization, the Gymnasium env and scripted experts."""

from tidyarm.sim.env import EnvConfig, So101Env
from tidyarm.sim.experts import make_expert
from tidyarm.sim.randomize import Randomization
from tidyarm.sim.tasks import TASKS

__all__ = ["TASKS", "EnvConfig", "Randomization", "So101Env", "make_expert"]
