"""Weight-normalised 1-d convolutions with exact length rules, causal or centred.

Length rule: with an input length divisible by the stride s, a `Conv1d` returns exactly T / s steps and a
`ConvTranspose1d` exactly T * s. Padding is zeros, never reflection, so that a padded batch whose tails
are zeroed (`mask_tail`) computes for each item what the item computes alone.
Causal: all padding on the left (convolution) or all trimming on the right (transposed convolution), so
an output never depends on later inputs.
Streaming (causal only): `init_state(batch)` gives the layer's memory of earlier inputs (a `ConvState`
that starts as the zero padding of a whole pass) and `step(x, state)` computes the outputs that a chunk x
completes, the same outputs a whole pass computes at those steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from codeclab.codecs.modules.state import ConvState, StreamingUnsupported


def mask_tail(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Zero x [B, C, T] at steps >= lengths[b]; no-op without lengths or when nothing is padded."""
    if lengths is None:
        return x
    t = x.shape[-1]
    if bool((lengths >= t).all()):
        return x
    keep = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
    return x * keep[:, None, :].to(x.dtype)


class Conv1d(nn.Module):
    """x [B, C_in, T] -> [B, C_out, T / stride] (T divisible by stride)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        causal: bool = False,
        norm: bool = True,
        bias: bool = True,
        groups: int = 1,
    ) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size ({kernel_size}) must be >= stride ({stride})")
        conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, bias=bias, groups=groups
        )
        self.conv = weight_norm(conv) if norm else conv
        self.stride = stride
        self.span = dilation * (kernel_size - 1)  # input steps one output reads, minus one
        total = dilation * (kernel_size - 1) + 1 - stride
        self.pad_left = total if causal else total - total // 2
        self.pad_right = 0 if causal else total // 2
        self.causal = causal or self.pad_right == 0

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % self.stride:
            raise ValueError(f"input length {x.shape[-1]} is not a multiple of the stride {self.stride}")
        return self.conv(F.pad(x, (self.pad_left, self.pad_right)))

    def init_state(self, batch_size: int, min_outputs: int = 1) -> ConvState:
        """The memory of a fresh stream: zero inputs [B, C_in, h], the `pad_left` inputs that the next
        output reads before its own, and enough earlier ones that every step computes at least
        `min_outputs` outputs (see `step`)."""
        if not self.causal:
            raise StreamingUnsupported(
                "a centred (non-causal) convolution reads later inputs; it cannot stream"
            )
        weight = next(self.conv.parameters())
        keep = self.pad_left + (max(min_outputs, 1) - 1) * self.stride
        return ConvState(weight.new_zeros(batch_size, self.conv.in_channels, keep))

    def step(self, x: Tensor, state: ConvState) -> Tensor:
        """Chunk x [B, C_in, n] (n a multiple of the stride) -> its outputs [B, C_out, n / stride].

        The convolution runs over the kept inputs and the chunk, and the outputs of earlier steps are
        dropped: with `min_outputs` of 12 or more no call is a thin matrix, whose BLAS kernels round
        furthest from a whole pass (a streamed encoder's latents came within 1e-6 of a whole pass's, 1.6e-5
        without; the rounding still depends on an output's place in the matrix, so not bit for bit)."""
        n = x.shape[-1]
        if n % self.stride:
            raise ValueError(f"chunk length {n} is not a multiple of the stride {self.stride}")
        if n == 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        keep = state.history.shape[-1]
        full = torch.cat([state.history, x], dim=-1)
        state.history = full[..., full.shape[-1] - keep :]
        y = self.conv(full)
        return y[..., y.shape[-1] - n // self.stride :]


class ConvTranspose1d(nn.Module):
    """x [B, C_in, T] -> [B, C_out, T * stride]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        causal: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size ({kernel_size}) must be >= stride ({stride})")
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.conv = weight_norm(conv) if norm else conv
        extra = kernel_size - stride
        self.trim_right = extra if causal else extra // 2
        self.trim_left = extra - self.trim_right
        self.stride = stride
        self.causal = causal or self.trim_left == 0
        self.history = (kernel_size - 1) // stride  # earlier inputs that reach a new input's outputs

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y[..., self.trim_left : y.shape[-1] - self.trim_right]

    def init_state(self, batch_size: int, min_outputs: int = 1) -> ConvState:
        """The memory of a fresh stream: `(kernel - 1) // stride` zero inputs [B, C_in, h] (`min_outputs`
        is accepted for a uniform interface; a transposed convolution's outputs are never thin)."""
        if not self.causal:
            raise StreamingUnsupported(
                "a centred (non-causal) transposed convolution needs later inputs; it cannot stream"
            )
        weight = next(self.conv.parameters())
        return ConvState(weight.new_zeros(batch_size, self.conv.in_channels, self.history))

    def step(self, x: Tensor, state: ConvState) -> Tensor:
        """Chunk x [B, C_in, n] -> the outputs [B, C_out, n * stride] that it completes. They are
        recomputed from the kept inputs rather than summed from partial outputs, so each output is the
        same sum, in the same order, as in a whole pass."""
        n = x.shape[-1]
        if n == 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        full = torch.cat([state.history, x], dim=-1)
        state.history = full[..., full.shape[-1] - self.history :]
        y = self.conv(full)
        start = self.history * self.stride
        return y[..., start : start + n * self.stride]


def receptive_field(module: nn.Module) -> tuple[int, int] | None:
    """Input samples (before, after) that one output step of `module` depends on, relative to the
    output's first input sample; None when the module has unbounded context (an LSTM).

    Walks the `Conv1d`s (and attentions with a `left_context` in steps) in registration order, which is
    forward order in codeclab's encoders; a residual unit's skip path has no extent, so the branch bounds
    it.
    """
    left = right = 0
    stride = 1
    for sub in module.modules():
        if isinstance(sub, nn.LSTM):
            return None
        if isinstance(sub, Conv1d):
            left += sub.pad_left * stride
            right += (sub.span - sub.pad_left) * stride
            stride *= sub.stride
        elif isinstance(sub, ConvTranspose1d):
            return None
        else:  # an attention over a window of earlier steps (modules.bottleneck.WindowedAttention)
            left += getattr(sub, "left_context", 0) * stride
    return left, right
