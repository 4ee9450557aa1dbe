"""Causal inverse-STFT overlap-add shared by the frame-rate decoders (`istft`, `source_filter`).

Frame s's synthesis window covers samples [(s + 1 - overlap) * hop, (s + 1) * hop): it ends where its
hop-block ends, so a frame only describes audio its code frame has heard. A block of hop samples is
complete once the frame that ends on it and the `overlap - 1` frames after it are in. Each block sums its
`overlap` window segments in one fixed order, newest frame first, in a whole pass and in a stream alike,
so a stream's samples differ from a whole pass's only by the rounding of what produced the spectra.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeclab.codecs.modules.state import OverlapAddState


class OverlapAdd(nn.Module):
    """Complex spectra [B, C, n_fft // 2 + 1, S] -> audio [B, C, S * hop] (hann synthesis window, n_fft =
    hop * overlap; unit spectra give unit audio)."""

    window: Tensor  # a registered buffer

    def __init__(self, hop: int, overlap: int) -> None:
        super().__init__()
        self.hop, self.overlap, self.n_fft = hop, overlap, hop * overlap
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)

    def synthesis_frames(self, spec: Tensor) -> Tensor:
        """spectra [B, C, bins, S] -> windowed time-domain frames [B, C, n_fft, S]."""
        return torch.fft.irfft(spec, n=self.n_fft, dim=2) * self.window[:, None]

    def complete_blocks(self, frames: Tensor) -> Tensor:
        """frames [B, C, n_fft, overlap - 1 + n]: the `overlap - 1` frames before n new ones, then the new
        -> the n blocks of audio [B, C, n * hop] that the new frames complete. Block of new frame m sums
        segment j of frame m - j for j = 0 .. overlap - 1 (newest first), always in that order."""
        hop, overlap = self.hop, self.overlap
        b, c, _, total = frames.shape
        lead, n = overlap - 1, total - (overlap - 1)
        segments = frames.view(b, c, overlap, hop, total)
        blocks = segments[:, :, 0, :, lead : lead + n]
        for j in range(1, overlap):
            blocks = blocks + segments[:, :, j, :, lead - j : lead - j + n]
        # Hann windows at overlap n_fft/hop sum to n_fft / (2 hop); divide so unit spectra give unit audio
        blocks = blocks / (self.n_fft / (2 * hop))
        return blocks.permute(0, 1, 3, 2).reshape(b, c, n * hop)

    def forward(self, spec: Tensor) -> Tensor:
        """spectra [B, C, bins, S] -> wav [B, C, S * hop] (a whole pass: no frames before 0 or after S - 1)."""
        lead = self.overlap - 1
        frames = F.pad(self.synthesis_frames(spec), (lead, lead))
        return self.complete_blocks(frames)[..., lead * self.hop :]

    def init_state(self, batch_size: int, channels: int) -> OverlapAddState:
        lead = self.overlap - 1
        pending = self.window.new_zeros(batch_size, channels, self.n_fft, lead)
        return OverlapAddState(pending, drop=lead, mute=[0] * batch_size)

    def step(self, new_frames: Tensor, state: OverlapAddState) -> Tensor:
        """Windowed frames [B, C, n_fft, n] of a stream -> the blocks they complete [B, C, samples] (the
        first `overlap - 1` blocks of a stream lie before its start and are dropped; a restarted slot's
        come out as silence)."""
        frames = torch.cat([state.frames, new_frames], dim=-1)
        state.frames = frames[..., frames.shape[-1] - state.frames.shape[-1] :]
        wav = self.complete_blocks(frames)
        hop = self.hop
        drop = min(state.drop, new_frames.shape[-1])
        state.drop -= drop
        wav = wav[..., drop * hop :]
        for index, muted in enumerate(state.mute):
            if muted:
                silent = min(muted, wav.shape[-1] // hop)
                wav[index, :, : silent * hop] = 0
                state.mute[index] = muted - silent
        return wav

    def flush(self, state: OverlapAddState) -> Tensor:
        """The audio [B, C, (overlap - 1) * hop] still waiting for later frames, completed as a whole pass
        completes an item's end."""
        b, c, n_fft, lead = state.frames.shape
        return self.step(state.frames.new_zeros(b, c, n_fft, lead), state)
