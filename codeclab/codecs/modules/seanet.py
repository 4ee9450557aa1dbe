"""SEANet convolutional encoder and decoder (SoundStream / EnCodec style), causal or not.

Encoder: conv -> [residual units -> activation -> strided conv (x2 channels)] per ratio -> [LSTM] ->
activation -> conv to `dimension`. Decoder mirrors it with transposed convolutions, upsampling by the
ratios in reverse order. Every block takes and returns `(x, lengths)`: `lengths [B]` are the valid steps of
each item at the block's resolution, and steps past them are kept at zero, which is what makes a padded
batch compute exactly what each item computes alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor, nn

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.modules.activations import make_activation
from codeclab.codecs.modules.conv import Conv1d, ConvTranspose1d, mask_tail


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


class Projection(nn.Module):
    """[act ->] conv with stride 1; [B, C_in, T] -> [B, C_out, T]."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, cfg: SEANetConfig, act: bool) -> None:
        super().__init__()
        self.act = make_activation(cfg.activation, in_ch) if act else nn.Identity()
        self.conv = Conv1d(in_ch, out_ch, kernel_size, causal=cfg.causal, norm=cfg.weight_norm)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return mask_tail(self.conv(self.act(x)), lengths), lengths


class LSTMBlock(nn.Module):
    """Unidirectional LSTM with a skip connection (EnCodec's SLSTM); causal by construction."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, channels, layers)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        y, _ = self.lstm(x.permute(2, 0, 1))
        return mask_tail(x + y.permute(1, 2, 0), lengths), lengths


def _run(blocks: nn.ModuleList, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
    for block in blocks:
        x, lengths = block(x, lengths)
    return x, lengths


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
