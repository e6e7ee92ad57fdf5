"""Export and load the deployable policy: actor weights (safetensors) + policy.json (env and net).

Two kinds: "state" (sac.Policy over the state vector) and "pixels" (pixel_actor.PixelPolicy over camera
frames and proprioception; policy.json then also holds the PixelNetConfig under "net", and for a
distilled estimator student the shapes that rebuild it under "student"). A third kind, "il", is an imitation
policy (BC, ACT, diffusion) saved by tidyarm.il.policy_file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tidyarm import __version__
from tidyarm.rl.checkpoint import load_tensors, read_json, save_tensors, write_json
from tidyarm.rl.estimator_student import EstimatorStudent
from tidyarm.rl.pixel_actor import PixelActor, PixelNetConfig, PixelPolicy
from tidyarm.rl.sac import SAC, Policy
from tidyarm.sim.env import EnvConfig

POLICY_WEIGHTS, POLICY_JSON = "policy.safetensors", "policy.json"
POLICY_FORMAT = 1


@dataclass
class LoadedPolicy:
    policy: Policy | PixelPolicy
    env_config: EnvConfig
    meta: dict

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "state")

    def reset(self) -> None:
        if isinstance(self.policy, PixelPolicy) or self.kind == "il":
            self.policy.reset()  # forget the previous episode's frames (and an imitation policy's chunks)

    def __call__(self, obs) -> np.ndarray:
        return self.policy(obs) if isinstance(self.policy, PixelPolicy) else self.policy.act(obs)


def export_policy(directory: Path, agent: SAC, env_config: EnvConfig, algo: str, step: int,
                  command: str | None = None) -> Path:
    meta = {"format": POLICY_FORMAT, "algo": algo, "step": step, "obs_dim": agent.obs_dim,
            "action_dim": agent.action_dim, "env": env_config.to_dict(), "tidyarm_version": __version__}
    if command:
        meta["command"] = command
    save_tensors(directory / POLICY_WEIGHTS, agent.policy_state_dict())
    write_json(directory / POLICY_JSON, meta)  # written last: the pair is complete once this exists
    return directory / POLICY_JSON


def export_pixel_policy(directory: Path, actor: PixelActor | EstimatorStudent, env_config: EnvConfig, algo: str,
                        step: int) -> Path:
    """Write a pixel policy's weights and policy.json (kind "pixels", with its PixelNetConfig under "net", and
    under "student" what rebuilds an estimator student)."""
    meta = {"format": POLICY_FORMAT, "kind": "pixels", "algo": algo, "step": step, "action_dim": actor.action_dim,
            "stochastic": actor.stochastic, "net": actor.net.to_dict(), "env": env_config.to_dict(),
            "tidyarm_version": __version__}
    if isinstance(actor, EstimatorStudent):
        meta["student"] = actor.describe()
    save_tensors(directory / POLICY_WEIGHTS, {key: value.detach().clone() for key, value in actor.state_dict().items()})
    write_json(directory / POLICY_JSON, meta)
    return directory / POLICY_JSON


def _load_pixel_policy(meta: dict, meta_path: Path, weights_path: Path) -> PixelPolicy:
    try:
        net = PixelNetConfig.from_dict(meta["net"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{meta_path}: field 'net' does not describe a pixel network ({error})") from error
    if "student" in meta:
        try:
            actor = EstimatorStudent.from_description(net, int(meta["action_dim"]), meta["student"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{meta_path}: field 'student' does not describe an estimator student "
                             f"({error})") from error
    else:  # a SAC actor also has a log-std head; the deployed policy acts on the mean alone
        actor = PixelActor(net, int(meta["action_dim"]), stochastic=bool(meta.get("stochastic", False)))
    try:
        actor.load_state_dict(load_tensors(weights_path))
    except RuntimeError as error:
        raise ValueError(f"{weights_path}: weights do not fit the network in {meta_path}: {error}") from error
    return PixelPolicy(actor)


def load_policy(directory: Path) -> LoadedPolicy:
    """Load an exported policy; every mismatch names the file and the field."""
    directory = Path(directory)
    meta_path, weights_path = directory / POLICY_JSON, directory / POLICY_WEIGHTS
    if not meta_path.is_file():
        raise FileNotFoundError(f"{directory} holds no {POLICY_JSON}: not a run directory or exported policy")
    meta = read_json(meta_path)
    kind = meta.get("kind", "state")
    required = ("format", "action_dim", "env") + {"state": ("obs_dim",), "il": ("il",)}.get(kind, ("net",))
    missing = [key for key in required if key not in meta]
    if missing:
        raise ValueError(f"{meta_path} lacks field(s) {missing}")
    if meta["format"] != POLICY_FORMAT:
        raise ValueError(f"{meta_path}: field 'format' is {meta['format']}; this tidyarm reads {POLICY_FORMAT}")
    if kind == "pixels":
        return LoadedPolicy(_load_pixel_policy(meta, meta_path, weights_path), EnvConfig.from_dict(meta["env"]), meta)
    if kind == "il":  # imitation policies (tidyarm.il) over LeRobot features; imported here, rl does not need il
        from tidyarm.il.agent import ILAgent
        from tidyarm.il.policy_file import load_il_policy

        return LoadedPolicy(ILAgent(load_il_policy(meta, meta_path, weights_path)), EnvConfig.from_dict(meta["env"]),
                            meta)
    if kind != "state":
        raise ValueError(f"{meta_path}: field 'kind' is {kind!r}; expected 'state', 'pixels' or 'il'")
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
    if loaded.kind == "il":
        loaded.policy.bind(env, source)  # checks the action mode; each frame's features are checked as it acts
        return
    if loaded.kind == "pixels":
        check_pixel_env(loaded.policy.net, loaded.meta["action_dim"], env, source)
        return
    if env.obs_mode != "state":
        raise ValueError(f"{source} is a state policy; the env gives {env.obs_mode!r} observations")
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


def check_pixel_env(net: PixelNetConfig, action_dim: int, env, source: str) -> None:
    """Refuse a pixel policy for an env whose cameras, image size or action size differ from its training."""
    spaces = getattr(env.observation_space, "spaces", {})
    expected = (net.image_size, net.image_size, 3)
    for camera in net.cameras:
        if camera not in spaces or spaces[camera].shape != expected:
            found = spaces[camera].shape if camera in spaces else "no such camera"
            raise ValueError(f"{source}: policy expects {camera!r} images of shape {expected}; the env gives {found} "
                             f"(obs_mode {env.obs_mode!r})")
    if env.action_space.shape[0] != action_dim:
        raise ValueError(f"{source}: policy has action_dim {action_dim}; the env gives {env.action_space.shape[0]}")
