"""Linear layers through oneDNN's fused GEMM on CPU, with a plain PyTorch fallback.

Why: on AVX-512 CPUs where MKL stays on its AVX2 path (measured on an AMD EPYC), oneDNN's fp32 GEMM is
about 2x faster for the 256-wide layers SAC uses (bench/sac_speed.py). The kernel is a private PyTorch op,
so its presence and its agreement with F.linear are checked once; without it everything falls back to
F.linear, slower but identical (tests/test_sac.py compares the two paths).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

ONEDNN_MATMUL = True
"""Run CPU float32 linear layers through oneDNN instead of PyTorch's default BLAS (set False to compare)."""


@functools.cache
def _onednn_usable() -> bool:
    """Whether this PyTorch build ships the oneDNN linear kernel and it agrees with F.linear."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    # Fixed inputs, not torch.randn: this check must not consume the global random stream.
    x = torch.linspace(-1.0, 1.0, 12).reshape(4, 3)
    weight, bias = torch.linspace(0.5, -0.5, 6).reshape(2, 3), torch.tensor([0.1, -0.2])
    try:
        return bool(torch.allclose(_onednn_gemm(x, weight, bias), F.linear(x, weight, bias), atol=1e-5))
    except RuntimeError:  # a build without the CPU kernel registered
        return False


def _onednn_gemm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
                 activation: str = "none") -> torch.Tensor:
    """activation(a @ b.T + bias) for 2-D float32 CPU tensors; activation is "none" or "relu"."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, activation, [None] if activation == "relu" else [], "")


class _OneDnnLinear(torch.autograd.Function):
    """F.linear, optionally followed by ReLU fused into the same kernel, with every GEMM in oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> torch.Tensor:
        out = _onednn_gemm(x, weight, bias, "relu" if relu else "none")
        ctx.save_for_backward(x, weight, out if relu else None)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, relu_out = ctx.saved_tensors
        if relu_out is not None:
            grad_out = torch.ops.aten.threshold_backward(grad_out, relu_out, 0)  # zero where the ReLU was off
        needs_x, needs_weight, needs_bias, _ = ctx.needs_input_grad
        grad_x = _onednn_gemm(grad_out, weight.t()) if needs_x else None  # (B, out) @ (out, in)
        grad_weight = _onednn_gemm(grad_out.t(), x.t()) if needs_weight else None  # (out, B) @ (B, in)
        grad_bias = grad_out.sum(0) if ctx.has_bias and needs_bias else None
        return grad_x, grad_weight, grad_bias, None


def onednn_applies(x: torch.Tensor) -> bool:
    return ONEDNN_MATMUL and x.device.type == "cpu" and x.dtype == torch.float32 and _onednn_usable()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False
           ) -> torch.Tensor:
    """F.linear (x @ weight.T + bias), then ReLU if asked; through oneDNN for 2-D float32 CPU inputs when usable."""
    # oneDNN's fixed cost (~15 us) only pays off on matrix-shaped products, not on batch-1 or 1-output ones.
    if x.dim() == 2 and min(x.shape[0], weight.shape[0]) >= 16 and onednn_applies(x):
        return _OneDnnLinear.apply(x, weight, bias, relu)
    out = F.linear(x, weight, bias)
    return F.relu(out) if relu else out
