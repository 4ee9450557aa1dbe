"""Frame-rate decoder with an inverse-STFT head (Vocos, https://arxiv.org/abs/2306.00814; WavTokenizer,
X-Codec 2): ConvNeXt blocks run at the codec's frame rate and predict, per frame, a magnitude and phase
spectrum; an inverse FFT and overlap-add turn the frames into audio. No upsampling convolutions: about
`hop` times fewer activations than a SEANet decoder, which is what makes it train fast on a CPU.

Time alignment (causal): frame f's synthesis window covers samples [(f + 1 - n_fft / hop) * hop,
(f + 1) * hop), i.e. it ends where the encoder's frame f ends, so a frame only ever describes audio its
encoder frame has heard. A sample of block b is complete once frames b .. b + n_fft / hop - 1 are
decoded: the decoder's lookahead is `n_fft / hop - 1` frames (60 ms for hop 320, n_fft 1280 at 16 kHz).
In a whole-file pass the last n_fft - hop samples are covered by fewer windows (they fade out).
Frames past each item's length are zeroed before the overlap-add, so a padded batch gives each item
exactly what it gives alone.

The overlap-add sums each block's `overlap` window segments in one fixed order, newest frame first, in
a whole pass and in a stream alike (`init_state`, `step`, `flush`), so a stream's samples differ from a
whole pass's only by the convolutions' rounding on short chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.modules.conv import Conv1d, mask_tail
from codeclab.codecs.modules.overlap_add import OverlapAdd
from codeclab.codecs.modules.state import ConvState, OverlapAddState, SequenceState


@dataclass
class ISTFTDecoderConfig:
    """channels: audio channels. dimension: latent size D. hop: samples per frame (the encoder's hop).
    width: ConvNeXt channels. blocks: ConvNeXt blocks. kernel_size: their depthwise kernel. expansion:
    pointwise expansion factor. overlap: n_fft / hop (4 as in Vocos). causal: causal convolutions."""

    channels: int = 1
    dimension: int = 128
    hop: int = 320
    width: int = 384
    blocks: int = 8
    kernel_size: int = 7
    expansion: int = 3
    overlap: int = 4
    causal: bool = True

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(
            self,
            {
                "channels": (1, 16),
                "dimension": (1, 16384),
                "hop": (2, 8192),
                "width": (1, 8192),
                "blocks": (1, 128),
                "kernel_size": (1, 255),
                "expansion": (1, 16),
                "overlap": (1, 16),
            },
        )
        if min(self.channels, self.dimension, self.hop, self.width, self.blocks, self.overlap) < 1:
            raise ValueError("channels, dimension, hop, width, blocks and overlap must be positive")
        if self.hop % 2:
            raise ValueError(f"hop must be even, got {self.hop}")

    @property
    def hop_length(self) -> int:
        return self.hop

    @property
    def n_fft(self) -> int:
        return self.hop * self.overlap

    @property
    def lookahead_frames(self) -> int:
        return self.overlap - 1


class ChannelNorm(nn.Module):
    """LayerNorm over channels of x [B, C, T] (per frame: no statistic crosses time or items)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock(nn.Module):
    """x + scale * pw2(gelu(pw1(norm(dwconv(x))))); [B, C, T] -> [B, C, T]. `step` runs one chunk of a
    stream (only the depthwise convolution keeps a memory)."""

    def __init__(self, width: int, kernel_size: int, expansion: int, causal: bool) -> None:
        super().__init__()
        self.dwconv = Conv1d(width, width, kernel_size, causal=causal, norm=False, groups=width)
        self.norm = ChannelNorm(width)
        self.pw1 = nn.Conv1d(width, width * expansion, 1)
        self.pw2 = nn.Conv1d(width * expansion, width, 1)
        self.scale = nn.Parameter(torch.full((width, 1), 1.0 / 8))

    def forward(self, x: Tensor) -> Tensor:
        return self._pointwise(x, self.dwconv(x))

    def step(self, x: Tensor, state: ConvState) -> Tensor:
        return self._pointwise(x, self.dwconv.step(x, state))

    def _pointwise(self, x: Tensor, mixed: Tensor) -> Tensor:
        return x + self.scale * self.pw2(F.gelu(self.pw1(self.norm(mixed))))


class ISTFTDecoder(nn.Module):
    """latent [B, dimension, F] -> wav [B, channels, F * hop]."""

    def __init__(self, cfg: ISTFTDecoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.hop_length = cfg.hop
        self.embed = Conv1d(cfg.dimension, cfg.width, cfg.kernel_size, causal=cfg.causal, norm=False)
        self.norm_in = ChannelNorm(cfg.width)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.width, cfg.kernel_size, cfg.expansion, cfg.causal) for _ in range(cfg.blocks)
        )
        self.norm_out = ChannelNorm(cfg.width)
        self.bins = cfg.n_fft // 2 + 1
        self.head = nn.Conv1d(cfg.width, 2 * self.bins * cfg.channels, 1)
        self.synthesis = OverlapAdd(cfg.hop, cfg.overlap)

    def context_frames(self) -> tuple[int, int]:
        """Latent frames (before, after) that the audio of one frame depends on: the embedding and block
        convolutions reach back (causal) or both ways, and a frame's samples sum the windows of the next
        `overlap - 1` frames."""
        cfg = self.config
        span, convs = cfg.kernel_size - 1, cfg.blocks + 1
        if cfg.causal:
            return span * convs, cfg.overlap - 1
        return (span - span // 2) * convs, (span // 2) * convs + cfg.overlap - 1

    def lookahead_frames(self) -> int:
        """Frames after a frame that its audio waits for (the later windows that overlap it)."""
        return self.config.overlap - 1

    def _features(self, x: Tensor) -> Tensor:
        """Embedded features [B, width, F] -> complex spectra [B, channels, bins, F] (per frame)."""
        out = self.head(self.norm_out(x))
        b, _, frames = out.shape
        out = out.float().view(b, self.config.channels, 2, self.bins, frames)
        magnitude = torch.exp(out[:, :, 0]).clamp(max=1e2)
        return torch.polar(magnitude, out[:, :, 1])

    def spectra(self, z: Tensor, lengths: Tensor | None = None) -> Tensor:
        """latent [B, D, F] -> complex spectra [B, channels, bins, F], zero past each item's frames."""
        x = self.norm_in(self.embed(mask_tail(z, lengths)))
        for block in self.blocks:
            x = block(x)
        spec = self._features(x)
        if lengths is not None:
            keep = torch.arange(spec.shape[-1], device=z.device)[None, :] < lengths[:, None]
            spec = spec * keep[:, None, None, :]
        return spec

    def _synthesis_frames(self, spec: Tensor) -> Tensor:
        """spectra [B, C, bins, F] -> windowed time-domain frames [B, C, n_fft, F]."""
        return self.synthesis.synthesis_frames(spec)

    def overlap_add(self, spec: Tensor) -> Tensor:
        """spectra [B, C, bins, F] -> wav [B, C, F * hop] (end-aligned windows, see the module doc)."""
        return self.synthesis(spec)

    def forward(self, z: Tensor, lengths: Tensor | None = None) -> Tensor:
        """lengths [B]: valid frames per item. Output zero past each item's frames * hop samples."""
        wav = self.overlap_add(self.spectra(z, lengths))
        if lengths is not None:
            wav = mask_tail(wav, lengths * self.hop_length)
        return wav

    # -- streaming ------------------------------------------------------------------------------------
    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        """A fresh stream's memory: convolution histories, then the overlap-add's pending frames."""
        convs: list[ConvState | OverlapAddState | None] = [self.embed.init_state(batch_size, min_outputs)]
        convs += [block.dwconv.init_state(batch_size, min_outputs) for block in self.blocks]
        convs.append(self.synthesis.init_state(batch_size, self.config.channels))
        return SequenceState(convs)

    def step(self, z: Tensor, state: SequenceState) -> Tensor:
        """Latent frames [B, D, f] -> the audio [B, C, samples] they complete: blocks of hop samples up
        to `lookahead_frames()` frames behind the newest (the rest waits for later frames or `flush`)."""
        embed, *convs, overlap = state.children
        x = self.norm_in(self.embed.step(z, embed))
        for block, conv in zip(self.blocks, convs, strict=True):
            x = block.step(x, conv)
        return self.synthesis.step(self._synthesis_frames(self._features(x)), overlap)

    def flush(self, state: SequenceState) -> Tensor:
        """The audio [B, C, (overlap - 1) * hop] still waiting for later frames, completed as a whole pass
        completes the end of an item (no later frames). A stream that goes on needs a fresh state."""
        return self.synthesis.flush(state.children[-1])
