"""A low-frame-rate bottleneck: a strided convolution and a small causal transformer on each side of the
quantizer (Mimi's layout, https://arxiv.org/abs/2410.00037), so that a 50 Hz convolutional encoder and
decoder code speech at 12.5 Hz.

    encoder:  wav -> SEANet encoder [B, D, T / hop] -> strided conv [B, D, T / (hop * stride)] -> transformer
    decoder:  transformer -> transposed conv [B, D, F * stride] -> inner decoder (inverse STFT) -> wav

The transformer attends to a sliding window of `window` frames (itself and the `window - 1` before it)
with a learned bias per head and offset instead of absolute positions. Every output is therefore a
function of a bounded stretch of past input that does not depend on where the item starts, which keeps
the codec's contracts: causal, exact batching (attention is computed element by element over each frame's
window, and the projections are 1x1 convolutions, so no result depends on the batch's shape), chunked ==
whole (`receptive_field` counts `window - 1` frames per layer) and streaming (each layer remembers its
last `window - 1` inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.modules.conv import Conv1d, ConvTranspose1d, mask_tail
from codeclab.codecs.modules.istft import ChannelNorm
from codeclab.codecs.modules.state import AttentionState, SequenceState


@dataclass
class BottleneckConfig:
    """stride: frame-rate reduction from the convolutional encoder's frames to the codes' (4: 50 Hz ->
    12.5 Hz at 16 kHz with hop 320). layers: transformer layers on each side of the quantizer. heads:
    attention heads (they split the latent size D). window: frames each attention looks at, itself
    included. expansion: feed-forward width / D. layer_scale: initial scale of each residual branch."""

    stride: int = 4
    layers: int = 2
    heads: int = 4
    window: int = 16
    expansion: int = 4
    layer_scale: float = 0.1

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(
            self,
            {
                "stride": (1, 64),
                "layers": (0, 64),
                "heads": (1, 256),
                "window": (1, 4096),
                "expansion": (1, 16),
            },
        )
        if not 0.0 < self.layer_scale <= 1.0:
            raise ValueError(f"layer_scale must lie in (0, 1], got {self.layer_scale}")


class WindowedAttention(nn.Module):
    """Causal multi-head self-attention over a sliding window; x [B, D, T] -> [B, D, T]."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"the latent size {dim} is not divisible by {heads} heads")
        self.heads, self.window = heads, window
        self.qkv = nn.Conv1d(dim, 3 * dim, 1)
        self.out = nn.Conv1d(dim, dim, 1)
        self.bias = nn.Parameter(torch.zeros(heads, window))  # per head and offset (oldest first)

    @property
    def left_context(self) -> int:
        """Earlier frames one output reads (`receptive_field` adds them)."""
        return self.window - 1

    def forward(self, x: Tensor, first_valid: Tensor | None = None) -> Tensor:
        """x [B, D, T]; first_valid [B]: index of each item's first real frame (earlier frames are a
        stream's empty memory and are never attended to; default 0)."""
        b, d, t = x.shape
        w, h = self.window, self.heads
        q, k, v = self.qkv(x).view(b, 3, h, d // h, t).unbind(1)  # each [B, H, dh, T]
        k = F.pad(k, (w - 1, 0)).unfold(-1, w, 1)  # [B, H, dh, T, W]: frames t - W + 1 .. t
        v = F.pad(v, (w - 1, 0)).unfold(-1, w, 1)
        scores = (q.unsqueeze(-1) * k).sum(2) / math.sqrt(d // h) + self.bias[None, :, None, :]
        position = torch.arange(t, device=x.device)[:, None] - (w - 1) + torch.arange(w, device=x.device)
        start = first_valid if first_valid is not None else torch.zeros(b, dtype=torch.long, device=x.device)
        allowed = position[None] >= start.to(x.device)[:, None, None]  # [B, T, W]
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # a frame always sees itself, so no row is all -inf
        mixed = (weights.unsqueeze(2) * v).sum(-1)  # [B, H, dh, T]
        return self.out(mixed.reshape(b, d, t))


class TransformerLayer(nn.Module):
    """Pre-norm layer: x + s1 * attn(norm(x)), then + s2 * ff(norm(x)); [B, D, T] -> [B, D, T]."""

    def __init__(self, dim: int, cfg: BottleneckConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = ChannelNorm(dim), ChannelNorm(dim)
        self.attention = WindowedAttention(dim, cfg.heads, cfg.window)
        self.ff1 = nn.Conv1d(dim, dim * cfg.expansion, 1)
        self.ff2 = nn.Conv1d(dim * cfg.expansion, dim, 1)
        self.scale1 = nn.Parameter(torch.full((dim, 1), cfg.layer_scale))
        self.scale2 = nn.Parameter(torch.full((dim, 1), cfg.layer_scale))

    def forward(self, x: Tensor, first_valid: Tensor | None = None) -> Tensor:
        x = x + self.scale1 * self.attention(self.norm1(x), first_valid)
        return x + self.scale2 * self.ff2(F.gelu(self.ff1(self.norm2(x))))

    def init_state(self, batch_size: int, min_outputs: int = 1) -> AttentionState:
        weight = self.scale1
        history = weight.new_zeros(batch_size, weight.shape[0], self.attention.window - 1)
        return AttentionState(history, [0] * batch_size)

    def step(self, x: Tensor, state: AttentionState) -> Tensor:
        """Chunk x [B, D, n] -> its n outputs, computed over the remembered inputs and the chunk."""
        n = x.shape[-1]
        if n == 0:
            return x
        keep = state.history.shape[-1]
        full = torch.cat([state.history, x], dim=-1)
        first_valid = torch.tensor([keep - seen for seen in state.seen], device=x.device)
        y = self.forward(full, first_valid)
        state.history = full[..., full.shape[-1] - keep :]
        state.seen = [min(seen + n, keep) for seen in state.seen]
        return y[..., keep:]


class Transformer(nn.Module):
    """A stack of `TransformerLayer`s; x [B, D, T] -> [B, D, T], zero past each item's frames."""

    def __init__(self, dim: int, cfg: BottleneckConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(dim, cfg) for _ in range(cfg.layers))

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return mask_tail(x, frames)

    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        return SequenceState([layer.init_state(batch_size) for layer in self.layers])

    def step(self, x: Tensor, state: SequenceState) -> Tensor:
        for layer, child in zip(self.layers, state.children, strict=True):
            x = layer.step(x, child)
        return x


class BottleneckEncoder(nn.Module):
    """wav [B, C, T] (T divisible by the hop) -> latent [B, D, T / hop], hop = inner hop * stride.
    `inner` is a convolutional encoder with `forward(x, lengths)`, `init_state` and `step`."""

    def __init__(self, inner: nn.Module, dim: int, cfg: BottleneckConfig, causal: bool) -> None:
        super().__init__()
        self.inner = inner  # registered first: `receptive_field` walks modules in forward order
        self.down = Conv1d(dim, dim, 2 * cfg.stride, stride=cfg.stride, causal=causal)
        self.transformer = Transformer(dim, cfg)
        self.stride = cfg.stride
        self.hop_length = inner.hop_length * cfg.stride

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """lengths [B]: valid samples per item, each a multiple of the hop."""
        frames = None if lengths is None else lengths // self.hop_length
        # causal attention: frames past an item's end never reach its frames, and are zeroed at the end
        return self.transformer(self.down(self.inner(x, lengths)), frames)

    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        return SequenceState(
            [
                self.inner.init_state(batch_size, min_outputs * self.stride),
                self.down.init_state(batch_size, min_outputs),
                self.transformer.init_state(batch_size),
            ]
        )

    def step(self, x: Tensor, state: SequenceState) -> Tensor:
        """Chunk wav [B, C, n] (n a multiple of the hop) -> its latent frames [B, D, n / hop]."""
        inner, down, transformer = state.children
        return self.transformer.step(self.down.step(self.inner.step(x, inner), down), transformer)


class BottleneckDecoder(nn.Module):
    """latent [B, D, F] -> wav [B, C, F * hop]. `inner` is a decoder at the higher frame rate with
    `forward(z, frames)`, `lookahead_frames`, `context_frames`, `init_state`, `step` and `flush`."""

    def __init__(self, inner: nn.Module, dim: int, cfg: BottleneckConfig, causal: bool) -> None:
        super().__init__()
        self.transformer = Transformer(dim, cfg)
        self.up = ConvTranspose1d(dim, dim, 2 * cfg.stride, cfg.stride, causal=causal)
        self.inner = inner
        self.stride = cfg.stride
        self.hop_length = inner.hop_length * cfg.stride

    def forward(self, z: Tensor, frames: Tensor | None = None) -> Tensor:
        """frames [B]: valid frames per item."""
        inner_frames = None if frames is None else frames * self.stride
        up = mask_tail(self.up(self.transformer(z, frames)), inner_frames)
        return self.inner(up, inner_frames)

    def lookahead_frames(self) -> float:
        """Frames after a frame that its audio waits for: the inner decoder's, in this rate's frames."""
        return self.inner.lookahead_frames() / self.stride

    def context_frames(self) -> tuple[int, int] | None:
        """Latent frames (before, after) that one frame's audio depends on (an upper bound)."""
        inner = self.inner.context_frames()
        if inner is None:
            return None
        before, after = inner
        attention = sum(layer.attention.left_context for layer in self.transformer.layers)
        return math.ceil(before / self.stride) + self.up.history + attention, math.ceil(after / self.stride)

    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        return SequenceState(
            [
                self.transformer.init_state(batch_size),
                self.up.init_state(batch_size),
                self.inner.init_state(batch_size, min_outputs),
            ]
        )

    def step(self, z: Tensor, state: SequenceState) -> Tensor:
        """Latent frames [B, D, f] -> the audio [B, C, samples] they complete (see the inner decoder)."""
        transformer, up, inner = state.children
        return self.inner.step(self.up.step(self.transformer.step(z, transformer), up), inner)

    def flush(self, state: SequenceState) -> Tensor:
        return self.inner.flush(state.children[2])
