"""tidyarm: teach a low-cost SO-101 arm to tidy a desk, learning mostly in MuJoCo simulation."""

from tidyarm.sim import TASKS, So101Env, env_id

__version__ = "0.1.0"
__all__ = ["TASKS", "So101Env", "env_id", "__version__"]
