"""tidyarm: teach a low-cost SO-101 arm to tidy a desk, learning mostly in MuJoCo simulation.

Importing the package registers the Gymnasium ids `tidyarm/Reach-v0`, `tidyarm/Lift-v0` and
`tidyarm/Place-v0` without importing MuJoCo, so a process can still choose its GL backend
(MUJOCO_GL) before anything renders.
"""

import gymnasium

__version__ = "0.1.0"

# Must match tidyarm.sim.tasks.TASKS (a test checks); kept here so registration stays import-light.
TASK_NAMES = ("reach", "lift", "place")


def env_id(task: str) -> str:
    """Gymnasium id of a task, e.g. env_id("lift") == "tidyarm/Lift-v0"."""
    return f"tidyarm/{task.capitalize()}-v0"


for _name in TASK_NAMES:
    if env_id(_name) not in gymnasium.registry:
        # The env applies the task's own time limit, so no TimeLimit wrapper is registered.
        gymnasium.register(env_id(_name), entry_point="tidyarm.sim.env:So101Env", kwargs={"task": _name})

__all__ = ["TASK_NAMES", "__version__", "env_id"]
