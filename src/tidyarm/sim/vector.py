"""Many So101Envs stepped as one batch: a Gymnasium vector env built from an `EnvConfig`.

Every copy is made by `EnvConfig.make`, the factory that training and evaluation already share, so a
vector env can never drift from the single env a policy is evaluated on.

Seeding: pass seeds to `reset(seed=[s0, s1, ...])` (or one int `s`, which Gymnasium expands to s, s+1, ...).
Each worker keeps its own `np_random`, seeded by that reset; later automatic resets draw from the same
stream, exactly as a single env does after `reset(seed=s)` followed by plain `reset()` calls.

Autoreset: `AutoresetMode.SAME_STEP`. When an episode ends, `step` returns that episode's true
reward/terminated/truncated, and the worker resets at once:
- `obs[i]` is already the first observation of the next episode;
- `info["final_obs"][i]` is the last observation of the episode that ended (None for envs that did not end),
  and `info["final_info"]` its info (e.g. `info["final_info"]["success"][i]`); the top-level info keys of
  env i then describe the reset.
So a replay transition is `(obs, action, reward, info["final_obs"][i] if done[i] else next_obs[i])`: every
`step` call is a real transition and none mixes two episodes. NEXT_STEP, Gymnasium's default, would instead
return the final observation as `obs` and spend the *next* call on the reset, with a zero reward and an
ignored action that a collector must know to drop.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import os
import sys
from collections.abc import Iterator

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from tidyarm.sim.env import EnvConfig

MAX_ENVS = 64
# Spawn starts each worker as a fresh interpreter. Fork would copy the parent mid-flight: an EGL display or
# GL context it opened, MuJoCo renderers, and threads (torch/OpenMP pools) whose locks may be held at fork
# time; a forked child can hang or crash on the first render. Forkserver would be safe too, but its server
# keeps the environment it started with, so a worker could not be given MUJOCO_GL afterwards.
START_METHOD = "spawn"


def make_vector_env(config: EnvConfig, num_envs: int, asynchronous: bool = True, frame_stack: int = 1, *,
                    env_overrides: dict | None = None) -> VectorEnv:
    """`num_envs` copies of `config.make(**env_overrides)` as one Gymnasium vector env.

    asynchronous: one worker process per env (AsyncVectorEnv; observations come back through shared memory),
      or all envs stepped in turn in this process (SyncVectorEnv).
    frame_stack: k > 1 stacks each camera's last k frames on the channel axis (`tidyarm.rl.frame_stack`),
      inside each worker, so a stacked observation is what a replay stores and a pixel policy sees.
    env_overrides: keyword arguments for So101Env beyond the config (e.g. max_episode_steps, render_mode).
    Autoreset mode and seeding: see the module docstring. Close the env to end its workers.
    Spawned workers re-import the caller's main module, so a script must create the env under
    `if __name__ == "__main__":`.
    """
    num_envs = _checked_num_envs(num_envs)
    frame_stack = _checked_frame_stack(frame_stack, config)
    env_fns = [functools.partial(_make_env, config, frame_stack, dict(env_overrides or {}))] * num_envs
    if not asynchronous:
        return SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    with _headless_gl_for_new_processes():
        return AsyncVectorEnv(env_fns, context=START_METHOD, autoreset_mode=AutoresetMode.SAME_STEP)


def _make_env(config: EnvConfig, frame_stack: int, overrides: dict) -> gym.Env:
    """Runs inside each worker (and once in the parent, where AsyncVectorEnv reads the spaces)."""
    env = config.make(**overrides)
    if frame_stack > 1:
        from tidyarm.rl.frame_stack import FrameStack  # only pixel runs with stacking need the rl package

        env = FrameStack(env, config.cameras, frame_stack)
    return env


@contextlib.contextmanager
def _headless_gl_for_new_processes() -> Iterator[None]:
    """Start processes with MUJOCO_GL=egl in their environment unless the caller chose a backend.

    MuJoCo picks its GL backend once, when it is imported, and a spawned worker imports it while unpickling
    the env factory (this module imports tidyarm.sim), before any code of ours runs there: setting the
    variable inside the factory would be too late. A spawned process copies the parent's environment when it
    starts, so the variable is set here for the start and removed again, leaving this process as it was.
    EGL is Linux-only; elsewhere MuJoCo's own default (CGL, WGL, GLFW) stays.
    """
    if "MUJOCO_GL" in os.environ or not sys.platform.startswith("linux"):
        yield
        return
    os.environ["MUJOCO_GL"] = "egl"
    try:
        yield
    finally:
        os.environ.pop("MUJOCO_GL", None)


def _checked_num_envs(num_envs) -> int:
    try:
        count = operator.index(num_envs)  # ints and numpy ints; not 2.0 or "2"
    except TypeError:
        count = None
    if count is None or isinstance(num_envs, bool) or not 1 <= count <= MAX_ENVS:
        raise ValueError(f"num_envs = {num_envs!r}: expected an integer in 1 .. {MAX_ENVS}")
    return count


def _checked_frame_stack(frame_stack, config: EnvConfig) -> int:
    try:
        k = operator.index(frame_stack)
    except TypeError:
        k = None
    if k is None or isinstance(frame_stack, bool) or k < 1:
        raise ValueError(f"frame_stack = {frame_stack!r}: expected an integer >= 1")
    if k > 1 and config.obs_mode == "state":
        raise ValueError(f"frame_stack = {k} with obs_mode 'state': frame stacking applies to camera images; "
                         "use obs_mode 'pixels' or 'state+pixels', or frame_stack = 1")
    return k
