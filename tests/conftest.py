import os

import pytest

# Tests render headless through EGL; set before anything imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread, restoring the previous count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
