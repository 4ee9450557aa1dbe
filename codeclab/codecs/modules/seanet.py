"""SEANet convolutional encoder and decoder (SoundStream / EnCodec style), causal or not.

Encoder: conv -> [residual units -> activation -> strided conv (x2 channels)] per ratio -> [LSTM] ->
activation -> conv to `dimension`. Decoder mirrors it with transposed convolutions, upsampling by the
ratios in reverse order. Every block takes and returns `(x, lengths)`: `lengths [B]` are the valid steps of
each item at the block's resolution, and steps past them are kept at zero, which is what makes a padded
batch compute exactly what each item computes alone.
Causal encoders and decoders also stream: `init_state(batch)` and `step(x, state)` run one chunk (a whole
number of frames) with the memory of the earlier chunks (docs/streaming.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor, nn

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.modules.activations import make_activation
from codeclab.codecs.modules.conv import Conv1d, ConvTranspose1d, mask_tail
from codeclab.codecs.modules.state import LSTMState, SequenceState, StateLike


@dataclass
class SEANetConfig:
    """channels: audio channels. dimension: latent size D. n_filters: channels of the first conv (doubled
    at each downsampling). ratios: downsampling factors in encoder order (the hop is their product)."""

    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    ratios: list[int] = field(default_factory=lambda: [2, 4, 5, 8])
    n_residual_layers: int = 1
    residual_kernel_size: int = 3
    dilation_base: int = 2
    kernel_size: int = 7
    last_kernel_size: int = 7
    compress: int = 2
    activation: str = "elu"
    lstm_layers: int = 0
    causal: bool = False
    weight_norm: bool = True

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(
            self,
            {
                "channels": (1, 16),
                "dimension": (1, 16384),
                "n_filters": (1, 4096),
                "ratios": (1, 64),
                "n_residual_layers": (0, 16),
                "residual_kernel_size": (1, 255),
                "dilation_base": (1, 16),
                "kernel_size": (1, 255),
                "last_kernel_size": (1, 255),
                "compress": (1, 64),
                "lstm_layers": (0, 16),
            },
        )
        if len(self.ratios) > 10 or self.n_filters * 2 ** len(self.ratios) > 4096:
            raise ValueError(
                f"SEANetConfig: {len(self.ratios)} ratios from {self.n_filters} filters reach "
                f"{self.n_filters * 2 ** len(self.ratios):,} channels (the limit is 4,096)"
            )
        if not self.ratios or any(int(r) < 1 for r in self.ratios):
            raise ValueError(f"ratios must be a non-empty list of positive integers, got {self.ratios}")
        if self.channels < 1 or self.dimension < 1 or self.n_filters < 1:
            raise ValueError("channels, dimension and n_filters must be positive")

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)


class ResidualUnit(nn.Module):
    """x + conv1x1(act(conv_k(act(x)))), channel bottleneck `compress`; [B, C, T] -> [B, C, T]."""

    def __init__(
        self, channels: int, kernel_size: int, dilation: int, compress: int, cfg: SEANetConfig
    ) -> None:
        super().__init__()
        hidden = max(channels // compress, 1)
        self.act1 = make_activation(cfg.activation, channels)
        self.conv1 = Conv1d(
            channels, hidden, kernel_size, dilation=dilation, causal=cfg.causal, norm=cfg.weight_norm
        )
        self.act2 = make_activation(cfg.activation, hidden)
        self.conv2 = Conv1d(hidden, channels, 1, norm=cfg.weight_norm)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        y = mask_tail(self.conv1(self.act1(x)), lengths)
        y = mask_tail(self.conv2(self.act2(y)), lengths)
        return x + y, lengths

    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        return SequenceState(
            [self.conv1.init_state(batch_size, min_outputs), self.conv2.init_state(batch_size, min_outputs)]
        )

    def step(self, x: Tensor, state: SequenceState) -> Tensor:
        first, second = state.children
        return x + self.conv2.step(self.act2(self.conv1.step(self.act1(x), first)), second)


class Resample(nn.Module):
    """act -> strided conv (down) or transposed conv (up); lengths scale with the factor."""

    def __init__(self, in_ch: int, out_ch: int, ratio: int, up: bool, cfg: SEANetConfig) -> None:
        super().__init__()
        self.ratio = ratio
        self.up = up
        self.act = make_activation(cfg.activation, in_ch)
        if up:
            self.conv: nn.Module = ConvTranspose1d(
                in_ch, out_ch, 2 * ratio, ratio, causal=cfg.causal, norm=cfg.weight_norm
            )
        else:
            self.conv = Conv1d(
                in_ch, out_ch, 2 * ratio, stride=ratio, causal=cfg.causal, norm=cfg.weight_norm
            )

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if lengths is not None:
            lengths = lengths * self.ratio if self.up else lengths // self.ratio
        return mask_tail(self.conv(self.act(x)), lengths), lengths

    def init_state(self, batch_size: int, min_outputs: int = 1) -> StateLike:
        return self.conv.init_state(batch_size, min_outputs)

    def step(self, x: Tensor, state: StateLike) -> Tensor:
        return self.conv.step(self.act(x), state)


class Projection(nn.Module):
    """[act ->] conv with stride 1; [B, C_in, T] -> [B, C_out, T]."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, cfg: SEANetConfig, act: bool) -> None:
        super().__init__()
        self.act = make_activation(cfg.activation, in_ch) if act else nn.Identity()
        self.conv = Conv1d(in_ch, out_ch, kernel_size, causal=cfg.causal, norm=cfg.weight_norm)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return mask_tail(self.conv(self.act(x)), lengths), lengths

    def init_state(self, batch_size: int, min_outputs: int = 1) -> StateLike:
        return self.conv.init_state(batch_size, min_outputs)

    def step(self, x: Tensor, state: StateLike) -> Tensor:
        return self.conv.step(self.act(x), state)


class LSTMBlock(nn.Module):
    """Unidirectional LSTM with a skip connection (EnCodec's SLSTM); causal by construction."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, channels, layers)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        y, _ = self.lstm(x.permute(2, 0, 1))
        return mask_tail(x + y.permute(1, 2, 0), lengths), lengths

    def init_state(self, batch_size: int, min_outputs: int = 1) -> LSTMState:
        weight = next(self.lstm.parameters())
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return LSTMState(weight.new_zeros(shape), weight.new_zeros(shape))

    def step(self, x: Tensor, state: LSTMState) -> Tensor:
        if x.shape[-1] == 0:
            return x
        y, (state.hidden, state.cell) = self.lstm(x.permute(2, 0, 1), (state.hidden, state.cell))
        return x + y.permute(1, 2, 0)


def _run(blocks: nn.ModuleList, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
    for block in blocks:
        x, lengths = block(x, lengths)
    return x, lengths


def _init_states(blocks: nn.ModuleList, batch_size: int, min_outputs: int) -> SequenceState:
    return SequenceState([block.init_state(batch_size, min_outputs) for block in blocks])


def _step(blocks: nn.ModuleList, x: Tensor, state: SequenceState) -> Tensor:
    for block, child in zip(blocks, state.children, strict=True):
        x = block.step(x, child)
    return x


class SEANetEncoder(nn.Module):
    """wav [B, channels, T] (T divisible by the hop) -> latent [B, dimension, T / hop]."""

    def __init__(self, cfg: SEANetConfig) -> None:
        super().__init__()
        self.config = cfg
        ch = cfg.n_filters
        blocks: list[nn.Module] = [Projection(cfg.channels, ch, cfg.kernel_size, cfg, act=False)]
        for ratio in cfg.ratios:
            for j in range(cfg.n_residual_layers):
                blocks.append(
                    ResidualUnit(ch, cfg.residual_kernel_size, cfg.dilation_base**j, cfg.compress, cfg)
                )
            blocks.append(Resample(ch, ch * 2, ratio, up=False, cfg=cfg))
            ch *= 2
        if cfg.lstm_layers:
            blocks.append(LSTMBlock(ch, cfg.lstm_layers))
        blocks.append(Projection(ch, cfg.dimension, cfg.last_kernel_size, cfg, act=True))
        self.blocks = nn.ModuleList(blocks)
        self.hop_length = cfg.hop_length

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """lengths [B]: valid samples per item, each a multiple of the hop."""
        return _run(self.blocks, mask_tail(x, lengths), lengths)[0]

    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        """A fresh stream's memory, per block (raises StreamingUnsupported when not causal); every
        convolution step computes at least `min_outputs` outputs (`Conv1d.step`)."""
        return _init_states(self.blocks, batch_size, min_outputs)

    def step(self, x: Tensor, state: SequenceState) -> Tensor:
        """Chunk wav [B, channels, n] (n a multiple of the hop) -> its latent frames [B, dimension, n / hop]."""
        return _step(self.blocks, x, state)


class SEANetDecoder(nn.Module):
    """latent [B, dimension, F] -> wav [B, channels, F * hop]."""

    def __init__(self, cfg: SEANetConfig) -> None:
        super().__init__()
        self.config = cfg
        ch = cfg.n_filters * 2 ** len(cfg.ratios)
        blocks: list[nn.Module] = [Projection(cfg.dimension, ch, cfg.kernel_size, cfg, act=False)]
        if cfg.lstm_layers:
            blocks.append(LSTMBlock(ch, cfg.lstm_layers))
        for ratio in reversed(cfg.ratios):
            blocks.append(Resample(ch, ch // 2, ratio, up=True, cfg=cfg))
            ch //= 2
            for j in range(cfg.n_residual_layers):
                blocks.append(
                    ResidualUnit(ch, cfg.residual_kernel_size, cfg.dilation_base**j, cfg.compress, cfg)
                )
        blocks.append(Projection(ch, cfg.channels, cfg.last_kernel_size, cfg, act=True))
        self.blocks = nn.ModuleList(blocks)
        self.hop_length = cfg.hop_length

    def forward(self, z: Tensor, lengths: Tensor | None = None) -> Tensor:
        """lengths [B]: valid frames per item."""
        return _run(self.blocks, mask_tail(z, lengths), lengths)[0]

    def lookahead_frames(self) -> int:
        """Frames after a frame that its audio waits for: none (a causal decoder)."""
        return 0

    def context_frames(self) -> tuple[int, int] | None:
        """Latent frames (before, after) that the audio of one frame depends on, walked back through the
        blocks from one frame's samples to the latent frames they read (None with an LSTM)."""
        return seanet_decoder_context(self)

    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        """A fresh stream's memory, per block (raises StreamingUnsupported when not causal); every
        convolution step computes at least `min_outputs` outputs (`Conv1d.step`)."""
        return _init_states(self.blocks, batch_size, min_outputs)

    def step(self, z: Tensor, state: SequenceState) -> Tensor:
        """Latent frames [B, dimension, f] -> their audio [B, channels, f * hop]."""
        return _step(self.blocks, z, state)

    def flush(self, state: SequenceState) -> Tensor:
        """Nothing waits for later frames in a causal SEANet decoder: an empty [B, channels, 0]."""
        first = state.children[0]  # the input projection's ConvState: [B, C_in, h]
        return first.history.new_zeros(first.history.shape[0], self.config.channels, 0)


def _input_span(module: nn.Module, lo: int, hi: int) -> tuple[int, int]:
    """Input steps [lo', hi'] that outputs [lo, hi] of one layer read (conv or transposed conv)."""
    if isinstance(module, Conv1d):
        return lo * module.stride - module.pad_left, hi * module.stride - module.pad_left + module.span
    if isinstance(module, ConvTranspose1d):
        kernel, stride = module.conv.kernel_size[0], module.stride
        first, last = lo + module.trim_left, hi + module.trim_left  # untrimmed output positions
        return -((kernel - 1 - first) // stride), last // stride  # ceil((first - k + 1) / s), floor(last / s)
    return lo, hi


def seanet_decoder_context(decoder: SEANetDecoder) -> tuple[int, int] | None:
    """(before, after) latent frames that the samples of one frame of `decoder` read, or None with an
    LSTM (it reads the whole past). Walks one frame's samples back through the blocks: a residual unit
    reads what its branch reads, its skip path adds nothing."""
    hop = decoder.hop_length
    frame = 10_000  # far from both ends, where the walk is a pure shift
    lo, hi = frame * hop, (frame + 1) * hop - 1
    for block in reversed(decoder.blocks):
        if isinstance(block, LSTMBlock):
            return None
        span_lo, span_hi = lo, hi
        for conv in reversed([m for m in block.modules() if isinstance(m, (Conv1d, ConvTranspose1d))]):
            span_lo, span_hi = _input_span(conv, span_lo, span_hi)
        if isinstance(block, ResidualUnit):
            lo, hi = min(lo, span_lo), max(hi, span_hi)
        else:
            lo, hi = span_lo, span_hi
    return frame - lo, hi - frame
