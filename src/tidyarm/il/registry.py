"""The imitation policies by name, and rebuilding one from its policy.json description."""

from __future__ import annotations

from tidyarm.il.act import ACTConfig, ACTPolicy
from tidyarm.il.base import ILPolicy, config_from_dict
from tidyarm.il.bc import BCConfig, BCPolicy
from tidyarm.il.diffusion import DiffusionConfig, DiffusionPolicy
from tidyarm.il.features import InputSpec

POLICIES: dict[str, tuple[type, type[ILPolicy]]] = {
    "bc": (BCConfig, BCPolicy), "act": (ACTConfig, ACTPolicy), "diffusion": (DiffusionConfig, DiffusionPolicy)}


def make_il_policy(kind: str, config, spec: InputSpec, stats: dict[str, dict], relative: bool = False) -> ILPolicy:
    if kind not in POLICIES:
        raise ValueError(f"unknown imitation policy {kind!r}; valid: {list(POLICIES)}")
    config_cls, policy_cls = POLICIES[kind]
    if not isinstance(config, config_cls):
        raise ValueError(f"policy {kind!r} takes a {config_cls.__name__}, not {type(config).__name__}")
    return policy_cls(config, spec, stats, relative)


def policy_from_description(description: dict) -> ILPolicy:
    """Rebuild an (untrained) policy from ILPolicy.describe()'s output; raise naming a bad field."""
    for field in ("policy", "config", "inputs", "stats"):
        if field not in description:
            raise ValueError(f"policy description lacks field {field!r}")
    kind = description["policy"]
    if kind not in POLICIES:
        raise ValueError(f"field 'policy' is {kind!r}; expected one of {list(POLICIES)}")
    config = config_from_dict(POLICIES[kind][0], description["config"])
    return make_il_policy(kind, config, InputSpec.from_dict(description["inputs"]), description["stats"],
                          bool(description.get("relative_actions", False)))
