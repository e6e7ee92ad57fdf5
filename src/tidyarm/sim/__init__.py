"""The SO-101 world: registers `tidyarm/<Task>-v0` Gymnasium ids for every task."""

import gymnasium

from tidyarm.sim.env import So101Env
from tidyarm.sim.tasks import TASKS


def env_id(task: str) -> str:
    return f"tidyarm/{task.capitalize()}-v0"


for _name, _task in TASKS.items():
    if env_id(_name) not in gymnasium.registry:
        gymnasium.register(env_id(_name), entry_point="tidyarm.sim.env:So101Env", kwargs={"task": _name},
                           max_episode_steps=_task.max_episode_steps)

__all__ = ["TASKS", "So101Env", "env_id"]
