"""Save and load an imitation policy: policy.safetensors (weights) + policy.json.

policy.json holds kind "il", the policy's description (name, config, input feature specs, normalization
stats), the EnvConfig it acts in, the task and where its demonstrations came from, so `tidyarm eval RUN_DIR`
rebuilds it with nothing else. Diffusion policies are saved with their averaged (EMA) weights.
"""

from __future__ import annotations

from pathlib import Path

from tidyarm import __version__
from tidyarm.il.base import ILPolicy
from tidyarm.il.registry import policy_from_description
from tidyarm.rl.checkpoint import load_tensors, save_tensors, write_json
from tidyarm.sim.env import EnvConfig

POLICY_WEIGHTS, POLICY_JSON = "policy.safetensors", "policy.json"
POLICY_FORMAT = 1  # the same format number as rl.policy_io: one policy.json family


def save_il_policy(directory: Path, policy: ILPolicy, env_config: EnvConfig, step: int, dataset: str,
                   command: str | None = None) -> Path:
    deployed = policy.deployable()
    meta = {"format": POLICY_FORMAT, "kind": "il", "algo": policy.kind, "step": step,
            "action_dim": policy.spec.action_dim, "il": deployed.describe(), "env": env_config.to_dict(),
            "task": env_config.task, "dataset": dataset, "tidyarm_version": __version__}
    if command:
        meta["command"] = command
    save_tensors(directory / POLICY_WEIGHTS, {k: v.detach().clone() for k, v in deployed.state_dict().items()})
    write_json(directory / POLICY_JSON, meta)  # written last: the pair is complete once this exists
    return directory / POLICY_JSON


def load_il_policy(meta: dict, meta_path: Path, weights_path: Path) -> ILPolicy:
    """Rebuild the policy from an already-read policy.json; every mismatch names the file and the field."""
    if "il" not in meta:
        raise ValueError(f"{meta_path} lacks field 'il' (the imitation policy's description)")
    try:
        policy = policy_from_description(meta["il"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{meta_path}: field 'il' does not describe an imitation policy ({error})") from error
    try:
        policy.load_state_dict(load_tensors(weights_path))
    except RuntimeError as error:
        raise ValueError(f"{weights_path}: weights do not fit the policy in {meta_path}: {error}") from error
    return policy.eval()
