"""Task registry: a plain dict from name to class."""

from tidyarm.sim.tasks.base import StepScore, Task
from tidyarm.sim.tasks.lift import Lift
from tidyarm.sim.tasks.place import Place
from tidyarm.sim.tasks.reach import Reach

TASKS: dict[str, type[Task]] = {task.name: task for task in (Reach, Lift, Place)}

__all__ = ["TASKS", "Lift", "Place", "Reach", "StepScore", "Task"]
