"""An agent's full training state (module weights, optimizer moments, scalars) as one flat dict of tensors.

The flat dict is what safetensors stores. Keys: `<module>.<param>` for weights and buffers,
`<optimizer>.<param index>.<field>` for Adam's moments and step counts, and the names of the extra tensors
(e.g. `log_alpha`, `num_updates`). Optimizer hyperparameters are not stored: they come from the config the
agent is rebuilt with.
"""

from __future__ import annotations

import torch
from torch import nn


def pack_agent_state(modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                     extras: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    tensors = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = value.detach().clone()
    for name, value in extras.items():
        tensors[name] = value.detach().clone()
    for prefix, optimizer in optimizers.items():
        for index, fields in optimizer.state_dict()["state"].items():
            for field, value in fields.items():
                tensors[f"{prefix}.{index}.{field}"] = torch.as_tensor(value).detach().clone()
    return tensors


def unpack_agent_state(tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module],
                       optimizers: dict[str, torch.optim.Optimizer], extras: dict[str, torch.Tensor],
                       optional: tuple[str, ...] = ()) -> None:
    """Load `tensors` into the modules, optimizers and extra tensors (copied in place); raises ValueError naming
    the first missing, unexpected or mis-shaped field. Extras named in `optional` may be absent."""
    expected = {f"{prefix}.{key}": value for prefix, module in modules.items()
                for key, value in module.state_dict().items()}
    expected.update({name: value for name, value in extras.items() if name not in optional or name in tensors})
    optimizer_keys = {key for key in tensors if key.split(".")[0] in optimizers}
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ValueError(f"state_dict is missing field {missing[0]!r} ({len(missing)} missing in all)")
    unexpected = sorted(set(tensors) - set(expected) - optimizer_keys - set(optional))
    if unexpected:
        raise ValueError(f"state_dict has unexpected field {unexpected[0]!r} ({len(unexpected)} in all)")
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise ValueError(f"state_dict field {key!r} has shape {tuple(tensors[key].shape)}; "
                             f"expected {tuple(value.shape)}")
    for prefix, module in modules.items():
        start = len(prefix) + 1
        module.load_state_dict({key[start:]: value for key, value in tensors.items() if key.startswith(f"{prefix}.")})
    with torch.no_grad():
        for name, value in extras.items():
            if name in tensors:
                value.copy_(tensors[name])
    for prefix, optimizer in optimizers.items():
        _load_optimizer_state(optimizer, prefix, tensors)


def _load_optimizer_state(optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    """Rebuild an optimizer state dict from `<prefix>.<param index>.<field>` tensors and the live param groups."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head != prefix:
            continue
        index, _, field = rest.partition(".")
        if not index.isdigit() or not field:
            raise ValueError(f"state_dict field {key!r}; expected '{prefix}.<param index>.<field>'")
        state.setdefault(int(index), {})[field] = value.clone()
    current = optimizer.state_dict()
    num_params = sum(len(group["params"]) for group in current["param_groups"])
    for index in state:
        if index >= num_params:
            raise ValueError(f"state_dict has {prefix} state for parameter {index}; the optimizer has {num_params}")
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
