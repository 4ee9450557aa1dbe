"""Excitations of the source-filter decoder, as short-time spectra at the decoder's synthesis framing.

Harmonic: every harmonic of F0 below 0.49 x the sample rate, all of one amplitude, summed in closed form
(a Dirichlet kernel) from one phase accumulator. Within code frame f the frequency moves linearly from
frame f - 1's F0 to frame f's (causal: no later frame is read); unvoiced frames are silent. The phase is
accumulated in float64 and carried across chunks by the stream state, so it is continuous by
construction and a stream gives a whole pass's excitation to float64 rounding. The signal is scaled to
unit power per sample and analysed with a Hann window at the synthesis framing (window s ends where
sub-frame s ends).

Noise: unit-power complex Gaussian spectra taken from a fixed table (seeded, period `NOISE_PERIOD`
sub-frames) by absolute sub-frame index, so a stream, a batch and a whole pass draw the same noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

NOISE_PERIOD = 2048  # sub-frames (10.24 s at 5 ms) before the noise table repeats
NOISE_SEED = 20261204


@dataclass
class ExcitationState:
    """One stream slot per item: the harmonic phase [B] (radians, float64, in [0, 2 pi)), the previous
    frame's F0 [B] (Hz, 0 = unvoiced), the last n_fft - hop excitation samples [B, n_fft - hop] and the
    absolute index of the next sub-frame per slot (for the noise table)."""

    phase: Tensor
    previous: Tensor
    tail: Tensor
    position: list[int]

    def reset(self, index: int) -> None:
        with torch.inference_mode():
            self.phase[index] = 0
            self.previous[index] = 0
            self.tail[index] = 0
        self.position[index] = 0


class Excitation(nn.Module):
    """F0 per code frame [B, F] -> harmonic spectra [B, bins, F * sub_frames] and noise spectra."""

    window: Tensor  # a registered buffer
    noise_table: Tensor  # a registered buffer

    def __init__(self, sample_rate: int, frame_hop: int, hop: int, overlap: int) -> None:
        super().__init__()
        self.sample_rate, self.frame_hop, self.hop, self.overlap = sample_rate, frame_hop, hop, overlap
        self.n_fft = hop * overlap
        self.sub_frames = frame_hop // hop
        self.bins = self.n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)
        generator = torch.Generator().manual_seed(NOISE_SEED)
        table = torch.randn(2, self.bins, NOISE_PERIOD, generator=generator) / math.sqrt(2)
        self.register_buffer("noise_table", torch.complex(table[0], table[1]), persistent=False)

    def init_state(self, batch_size: int) -> ExcitationState:
        device = self.window.device
        zeros = torch.zeros(batch_size, dtype=torch.float64, device=device)
        tail = torch.zeros(batch_size, self.n_fft - self.hop, device=device)
        return ExcitationState(zeros.clone(), zeros.clone(), tail, [0] * batch_size)

    def harmonic(self, f0: Tensor, phase: Tensor, previous: Tensor) -> tuple[Tensor, Tensor]:
        """f0 [B, F] Hz (0 = unvoiced), start phase [B], previous frame's F0 [B] -> (signal [B, F * frame_hop]
        float32, end phase [B])."""
        b, frames = f0.shape
        hop, sr = self.frame_hop, self.sample_rate
        f0 = f0.double()
        before = torch.cat([previous.double()[:, None], f0[:, :-1]], dim=1)
        ramp = torch.arange(1, hop + 1, dtype=torch.float64, device=f0.device) / hop
        start = torch.where(before > 0, before, f0)
        freq = start[..., None] + (f0 - start)[..., None] * ramp  # [B, F, hop]
        voiced = (f0 > 0)[..., None].expand(-1, -1, hop)
        freq = torch.where(voiced, freq, torch.full_like(freq, 100.0)).reshape(b, frames * hop)
        increments = 2 * math.pi * freq / sr
        theta = torch.remainder(phase.double()[:, None] + torch.cumsum(increments, dim=1), 2 * math.pi)
        count = torch.floor(0.49 * sr / freq).clamp(min=1)
        half = torch.sin(theta / 2)
        small = half.abs() < 1e-9
        total = torch.where(
            small, count, torch.sin((count + 0.5) * theta) / (2 * torch.where(small, 1.0, half)) - 0.5
        )
        signal = total / torch.sqrt(count / 2) * voiced.reshape(b, frames * hop)
        end = theta[:, -1] if frames else phase.double()
        return signal.float(), end

    def spectra(self, signal: Tensor, tail: Tensor) -> tuple[Tensor, Tensor]:
        """signal [B, S * hop] after tail [B, n_fft - hop] (the samples before it) -> (Hann-windowed
        spectra [B, bins, S], the new tail)."""
        x = torch.cat([tail, signal], dim=-1)
        frames = x.unfold(-1, self.n_fft, self.hop) * self.window  # [B, S, n_fft]
        spec = torch.fft.rfft(frames, dim=-1).transpose(1, 2)
        return spec, x[:, x.shape[-1] - tail.shape[-1] :]

    def noise(self, batch_size: int, start: list[int], count: int) -> Tensor:
        """Noise spectra [B, bins, count] of sub-frames start[b] .. start[b] + count - 1."""
        steps = torch.arange(count, device=self.noise_table.device)
        index = (torch.tensor(start, device=steps.device)[:, None] + steps) % NOISE_PERIOD  # [B, count]
        return self.noise_table[:, index].permute(1, 0, 2)

    def forward(self, f0: Tensor) -> tuple[Tensor, Tensor]:
        """f0 [B, F] Hz of a whole item -> (harmonic [B, bins, F * sub_frames], noise, same shape)."""
        state = self.init_state(f0.shape[0])
        return self.step(f0, state)

    def step(self, f0: Tensor, state: ExcitationState) -> tuple[Tensor, Tensor]:
        """The next f0 frames [B, f] of a stream -> their (harmonic, noise) spectra; the state moves on."""
        with torch.no_grad():
            signal, state.phase = self.harmonic(f0, state.phase, state.previous)
            if f0.shape[-1]:
                state.previous = f0[:, -1].double()
            harmonic, state.tail = self.spectra(signal.to(self.window.dtype), state.tail)
            count = harmonic.shape[-1]
            noise = self.noise(f0.shape[0], state.position, count)
            state.position = [p + count for p in state.position]
        return harmonic, noise
