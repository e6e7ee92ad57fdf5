"""SAC gradient updates per second: tidyarm's SAC against stable-baselines3's, in the same process.

Both sides get the same network sizes (256, 256), batch 256, obs 25 / action 5 (the SO-101 state task's
order of size), replay buffers filled with random transitions, and the same torch thread count. A "call" does
`chunk` updates: our `update_many(sample, chunk)` against SB3's `train(gradient_steps=chunk)`, each sampling its
own replay buffer, so sampling and host-side overhead count on both sides. Settings:

- SAC: 2 critics, no LayerNorm (SB3's default), against SB3 SAC;
- RLPD: 10 critics with LayerNorm, target min over a random pair, against SB3 SAC with n_critics=10
  (min over all ten, no LayerNorm: the closest SB3 has);
- SAC with tidyarm's oneDNN matmul switched off, to show what the rest of the design gives on its own.

Settings run interleaved, `repeats` times, and the table reports the median (the CPU may be shared).
Run: .venv/bin/python bench/sac_speed.py [--updates 200] [--threads 1]
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import torch
import tyro

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

from tidyarm.rl import fast_linear as sac_module  # noqa: E402
from tidyarm.rl.replay import ReplayBuffer  # noqa: E402
from tidyarm.rl.sac import SAC, SACConfig  # noqa: E402


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to time."""

    updates: int = 200
    """Gradient updates timed per setting and repeat."""
    chunk: int = 20
    """Updates per call (a UTD ratio of this many updates per env step)."""
    repeats: int = 3
    """Interleaved repetitions of every setting; the median is reported."""
    threads: int = 1
    """torch.set_num_threads for both implementations."""
    obs_dim: int = 25
    """Observation size."""
    action_dim: int = 5
    """Action size."""
    batch_size: int = 256
    """Transitions per update."""
    buffer_size: int = 10_000
    """Random transitions in each replay buffer."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 1:
                raise ValueError(f"{field.name}={getattr(self, field.name)}; expected an integer >= 1")
        if self.updates % self.chunk:
            raise ValueError(f"updates={self.updates}; expected a multiple of chunk={self.chunk}")


def ours(bench: BenchConfig, config: SACConfig, onednn: bool = True) -> Callable[[], None]:
    """One call = `chunk` updates of tidyarm's SAC, sampling its own replay buffer."""
    rng = np.random.default_rng(0)
    space = gymnasium.spaces.Box(-1.0, 1.0, (bench.obs_dim,), np.float32)
    buffer = ReplayBuffer(space, bench.action_dim, bench.buffer_size)
    for _ in range(bench.buffer_size):
        buffer.add(rng.normal(size=bench.obs_dim), rng.uniform(-1, 1, bench.action_dim), rng.normal(),
                   rng.normal(size=bench.obs_dim), 0.99, rng.random() < 0.01)
    agent = SAC(bench.obs_dim, bench.action_dim, config)

    def sample() -> dict:
        return buffer.sample(bench.batch_size, rng)

    def call() -> None:
        sac_module.ONEDNN_MATMUL = onednn
        try:
            agent.update_many(sample, bench.chunk)
        finally:
            sac_module.ONEDNN_MATMUL = True
    return call


def stable_baselines(bench: BenchConfig, num_critics: int) -> Callable[[], None]:
    """One call = SB3 SAC's `train(gradient_steps=chunk)` on a replay buffer of random transitions."""
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.logger import configure

    class RandomEnv(gymnasium.Env):
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (bench.obs_dim,), np.float32)
        action_space = gymnasium.spaces.Box(-1.0, 1.0, (bench.action_dim,), np.float32)

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    model = SB3SAC("MlpPolicy", RandomEnv(), buffer_size=bench.buffer_size, batch_size=bench.batch_size,
                   learning_starts=0, device="cpu", seed=0,
                   policy_kwargs={"net_arch": [256, 256], "n_critics": num_critics})
    model.set_logger(configure(None, []))  # train() records its losses; send them nowhere
    rng, replay = np.random.default_rng(0), model.replay_buffer
    replay.observations[:] = rng.normal(size=replay.observations.shape)
    replay.next_observations[:] = rng.normal(size=replay.next_observations.shape)
    replay.actions[:] = rng.uniform(-1, 1, replay.actions.shape)
    replay.rewards[:] = rng.normal(size=replay.rewards.shape)
    replay.dones[:] = rng.random(replay.dones.shape) < 0.01
    replay.full = True
    return lambda: model.train(gradient_steps=bench.chunk, batch_size=bench.batch_size)


def settings(bench: BenchConfig) -> dict[str, tuple[str, int, bool, Callable[[], Callable[[], None]]]]:
    """name -> (implementation, critics, layer norm, factory of the timed call)."""
    sac = SACConfig(critic_layer_norm=False, batch_size=bench.batch_size)
    rlpd = SACConfig.rlpd(batch_size=bench.batch_size)
    table = {
        "SAC": ("tidyarm", 2, False, lambda: ours(bench, sac)),
        "SAC (oneDNN off)": ("tidyarm", 2, False, lambda: ours(bench, sac, onednn=False)),
        "RLPD": ("tidyarm", 10, True, lambda: ours(bench, rlpd)),
    }
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        print("stable-baselines3 is not installed: timing tidyarm only (pip install stable-baselines3)")
        return table
    table["SB3 SAC"] = ("stable-baselines3", 2, False, lambda: stable_baselines(bench, 2))
    table["SB3 SAC 10 critics"] = ("stable-baselines3", 10, False, lambda: stable_baselines(bench, 10))
    return table


def measure(bench: BenchConfig, table: dict) -> dict[str, list[float]]:
    """Updates per second of every setting in `table`, `repeats` times, settings interleaved."""
    torch.manual_seed(0)
    calls = {name: factory() for name, (*_, factory) in table.items()}
    for call in calls.values():  # warm-up: allocator, oneDNN kernel selection, optimizer state
        call()
        call()
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(bench.repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(bench.updates // bench.chunk):
                call()
            rates[name].append(bench.updates / (time.perf_counter() - start))
    return rates


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main(bench: BenchConfig) -> None:
    torch.set_num_threads(bench.threads)
    table = settings(bench)
    rates = measure(bench, table)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = {2: medians.get("SB3 SAC"), 10: medians.get("SB3 SAC 10 critics")}
    rows = []
    for name, (implementation, critics, layer_norm, _) in table.items():
        reference = baseline[critics] if implementation == "tidyarm" else None
        rows.append({
            "setting": name, "implementation": implementation, "critics": critics, "layer_norm": layer_norm,
            "updates_per_s": medians[name], "min": min(rates[name]), "max": max(rates[name]),
            "vs_sb3": medians[name] / reference if reference else None,
            "cpu": cpu_model(), "threads": bench.threads, "batch_size": bench.batch_size, "hidden": [256, 256],
            "torch": torch.__version__, "updates": bench.updates, "repeats": bench.repeats,
        })
    report("sac_speed", rows, ["setting", "implementation", "critics", "layer_norm", "updates_per_s", "min", "max",
                               "vs_sb3"])
    for row in rows:
        if row["vs_sb3"] is not None:
            target = " (target >= 1.5x)" if row["setting"] == "SAC" else ""
            print(f"{row['setting']}: {row['vs_sb3']:.2f}x stable-baselines3 with {row['critics']} critics{target}")


if __name__ == "__main__":
    main(tyro.cli(BenchConfig))
