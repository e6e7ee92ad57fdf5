"""Export and load the deployable policy: actor weights (safetensors) + policy.json (env and net)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tidyarm import __version__
from tidyarm.rl.checkpoint import load_tensors, read_json, save_tensors, write_json
from tidyarm.rl.sac import SAC, Policy
from tidyarm.sim.env import EnvConfig

POLICY_WEIGHTS, POLICY_JSON = "policy.safetensors", "policy.json"
POLICY_FORMAT = 1


@dataclass
class LoadedPolicy:
    policy: Policy
    env_config: EnvConfig
    meta: dict

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(obs)


def export_policy(directory: Path, agent: SAC, env_config: EnvConfig, algo: str, step: int,
                  command: str | None = None) -> Path:
    meta = {"format": POLICY_FORMAT, "algo": algo, "step": step, "obs_dim": agent.obs_dim,
            "action_dim": agent.action_dim, "env": env_config.to_dict(), "tidyarm_version": __version__}
    if command:
        meta["command"] = command
    save_tensors(directory / POLICY_WEIGHTS, agent.policy_state_dict())
    write_json(directory / POLICY_JSON, meta)  # written last: the pair is complete once this exists
    return directory / POLICY_JSON


def load_policy(directory: Path) -> LoadedPolicy:
    """Load an exported policy; every mismatch names the file and the field."""
    directory = Path(directory)
    meta_path, weights_path = directory / POLICY_JSON, directory / POLICY_WEIGHTS
    if not meta_path.is_file():
        raise FileNotFoundError(f"{directory} holds no {POLICY_JSON}: not a run directory or exported policy")
    meta = read_json(meta_path)
    missing = [key for key in ("format", "obs_dim", "action_dim", "env") if key not in meta]
    if missing:
        raise ValueError(f"{meta_path} lacks field(s) {missing}")
    if meta["format"] != POLICY_FORMAT:
        raise ValueError(f"{meta_path}: field 'format' is {meta['format']}; this tidyarm reads {POLICY_FORMAT}")
    try:
        policy = Policy.from_state_dict(load_tensors(weights_path))
    except ValueError as error:
        raise ValueError(f"{weights_path}: {error}") from error
    for field, actual in (("obs_dim", policy.obs_dim), ("action_dim", policy.action_dim)):
        if meta[field] != actual:
            raise ValueError(f"{weights_path}: weights have {field} {actual} but {meta_path} says {meta[field]}")
    return LoadedPolicy(policy, EnvConfig.from_dict(meta["env"]), meta)


def check_policy_fits_env(loaded: LoadedPolicy, env, source: str) -> None:
    """Refuse a policy whose observation or action size differs from the env it is asked to drive."""
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if (loaded.meta["obs_dim"], loaded.meta["action_dim"]) != (obs_dim, action_dim):
        raise ValueError(f"{source}: policy expects obs_dim {loaded.meta['obs_dim']} and action_dim "
                         f"{loaded.meta['action_dim']}; the {env.task_name} env gives obs_dim {obs_dim} and "
                         f"action_dim {action_dim}")


def publish_policy(run_dir: Path, out_dir: Path, command: str) -> Path:
    """Copy a run's exported policy into `out_dir` (e.g. src/tidyarm/pretrained/<task>), recording the command."""
    loaded = load_policy(run_dir)  # validates before anything is copied
    out_dir.mkdir(parents=True, exist_ok=True)
    save_tensors(out_dir / POLICY_WEIGHTS, load_tensors(run_dir / POLICY_WEIGHTS))
    write_json(out_dir / POLICY_JSON, {**loaded.meta, "command": command})
    return out_dir
