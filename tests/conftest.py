import os

# Tests render headless through EGL; set before anything imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")
