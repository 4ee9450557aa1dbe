"""A causal pitch tracker (YIN, de Cheveigné & Kawahara 2002, http://audition.ens.fr/adc/pdf/2002_JASA_YIN.pdf)
and the 7-bit F0 codebook of the source-filter codecs.

Frame f's F0 is measured on the `window` samples that end where the frame ends, compared with the same
samples up to `1 / fmin` earlier: it reads no later audio (no lookahead) and `window + sr / fmin - hop`
samples before the frame. The difference function is computed in float64 with an FFT per frame, so a
frame's F0 does not depend on the batch or the chunking it comes in.

Codes: 0 is unvoiced; 1 .. levels - 1 are log-spaced F0 values from `fmin` to `fmax` (a step of about
0.29 semitone for 128 levels). Codes above the grid (an LM may emit them: the codebook has the codec's
`codebook_size` entries) decode as the top of the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from codeclab._checks import check_bounds, check_types


@dataclass
class PitchConfig:
    """mode: "sent" (the F0 codes travel as codebook `index` of the codes) or "predicted" (the decoder
    predicts them from the other codes; the tracker only gives training targets). fmin / fmax: the F0
    grid in Hz; levels: codes per frame (0 = unvoiced). window: samples compared per frame. threshold:
    YIN's aperiodicity threshold (voiced below it). silence_db: frames quieter than this (dBFS RMS) are
    unvoiced. index: the codebook that carries F0 in "sent" mode (1: after the semantic codebook)."""

    mode: str = "sent"
    fmin: float = 60.0
    fmax: float = 500.0
    levels: int = 128
    window: int = 320
    threshold: float = 0.3
    silence_db: float = -55.0
    index: int = 1

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(
            self,
            {
                "fmin": (1.0, 4000.0),
                "fmax": (2.0, 8000.0),
                "levels": (3, 65536),
                "window": (16, 8192),
                "threshold": (0.0, 1.0),
                "silence_db": (-200.0, 0.0),
                "index": (0, 64),
            },
        )
        if self.mode not in ("sent", "predicted"):
            raise ValueError(f"pitch mode must be 'sent' or 'predicted', got {self.mode!r}")
        if self.fmax <= self.fmin:
            raise ValueError(f"fmax ({self.fmax}) must be above fmin ({self.fmin})")

    @property
    def sent(self) -> bool:
        return self.mode == "sent"


def f0_to_codes(f0: Tensor, cfg: PitchConfig) -> Tensor:
    """F0 in Hz [...] (0 = unvoiced) -> codes [...] int64 (0 = unvoiced, 1 .. levels - 1 log-spaced)."""
    span = math.log(cfg.fmax / cfg.fmin)
    voiced = f0 > 0
    position = torch.log(f0.clamp(min=cfg.fmin, max=cfg.fmax) / cfg.fmin) / span
    codes = 1 + torch.round(position * (cfg.levels - 2)).long()
    return torch.where(voiced, codes, torch.zeros_like(codes))


def codes_to_f0(codes: Tensor, cfg: PitchConfig) -> Tensor:
    """codes [...] -> F0 in Hz [...] float64 (0 where unvoiced; codes past the grid clamp to fmax)."""
    step = codes.clamp(min=1, max=cfg.levels - 1).double() - 1
    f0 = cfg.fmin * torch.exp(step / (cfg.levels - 2) * math.log(cfg.fmax / cfg.fmin))
    return torch.where(codes > 0, f0, torch.zeros_like(f0))


def pitch_features(codes: Tensor, cfg: PitchConfig) -> Tensor:
    """codes [B, F] -> decoder conditioning [B, 2, F]: voiced flag, and log-F0 scaled to [-1, 1] (0 when
    unvoiced)."""
    voiced = (codes > 0).float()
    position = (codes.clamp(min=1, max=cfg.levels - 1).float() - 1) / (cfg.levels - 2) * 2 - 1
    return torch.stack([voiced, position * voiced], dim=1)


class PitchTracker:
    """Causal YIN at the codec's frame rate. `track(wav)` for whole signals, `init_state` / `step` for a
    stream (the same F0 to float64 rounding)."""

    def __init__(self, cfg: PitchConfig, sample_rate: int, hop: int) -> None:
        self.cfg, self.sample_rate, self.hop = cfg, sample_rate, hop
        self.tau_min = max(2, int(math.floor(sample_rate / cfg.fmax)))
        self.tau_max = int(math.ceil(sample_rate / cfg.fmin))
        self.span = cfg.window + self.tau_max  # samples one frame reads, ending at the frame's end
        self.n_fft = 1 << (self.span - 1).bit_length()

    @property
    def history(self) -> int:
        """Samples before a frame's first sample that its F0 reads."""
        return max(self.span - self.hop, 0)

    def track(self, wav: Tensor) -> Tensor:
        """wav [B, 1, F * hop] (mono, zero past each item) -> F0 in Hz [B, F] float64 (0 = unvoiced)."""
        x = F.pad(wav[:, 0].double(), (self.history, 0))
        return self._frames(x)

    def codes(self, wav: Tensor) -> Tensor:
        """wav [B, 1, F * hop] -> pitch codes [B, F] int64."""
        return f0_to_codes(self.track(wav), self.cfg)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> Tensor:
        """A fresh stream's memory: the last `history` samples [B, history] (zeros: before the start)."""
        return torch.zeros(batch_size, self.history, dtype=torch.float64, device=device)

    def step(self, wav: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        """Whole frames wav [B, 1, f * hop] -> (codes [B, f], the new history)."""
        x = torch.cat([history, wav[:, 0].double()], dim=-1)
        f0 = self._frames(x)
        return f0_to_codes(f0, self.cfg), x[:, x.shape[-1] - self.history :]

    def _frames(self, x: Tensor) -> Tensor:
        """x [B, history + F * hop] float64 -> F0 [B, F]."""
        W, tmax = self.cfg.window, self.tau_max
        frames = (x.shape[-1] - self.history) // self.hop
        if frames <= 0:
            return x.new_zeros(x.shape[0], 0)
        if self.span < self.hop:  # window shorter than a frame: read the last span samples of each
            x = x[:, self.hop - self.span :]
        seg = x.unfold(-1, self.span, self.hop)[:, :frames]  # [B, F, span]
        recent = seg[..., tmax:]  # [B, F, W]: the samples that end at the frame's end
        spectrum = torch.fft.rfft(seg, self.n_fft) * torch.fft.rfft(recent, self.n_fft).conj()
        cross = torch.fft.irfft(spectrum, self.n_fft)[..., : tmax + 1].flip(-1)  # [B, F, tau 0..tmax]
        power = F.pad(torch.cumsum(seg * seg, -1), (1, 0))
        start = torch.arange(tmax, -1, -1, device=x.device)  # tau -> first sample of the earlier copy
        earlier = power[..., start + W] - power[..., start]
        diff = (power[..., -1:] - power[..., tmax : tmax + 1]) + earlier - 2 * cross
        diff = diff.clamp(min=0)
        diff[..., 0] = 0
        taus = torch.arange(tmax + 1, device=x.device, dtype=x.dtype)
        running = torch.cumsum(diff, -1)
        cmnd = torch.where(running > 0, diff * taus / running.clamp(min=1e-300), torch.ones_like(diff))
        cmnd[..., 0] = 1
        return self._pick(cmnd, recent)

    def _pick(self, cmnd: Tensor, recent: Tensor) -> Tensor:
        """YIN's choice: the first local minimum of the normalised difference below the threshold, refined
        by a parabola; unvoiced when there is none or the frame is silent."""
        lo, hi = self.tau_min, self.tau_max
        mid = cmnd[..., lo:hi]
        left, right = cmnd[..., lo - 1 : hi - 1], cmnd[..., lo + 1 : hi + 1]
        dip = (mid < self.cfg.threshold) & (mid <= left) & (mid <= right)
        found = dip.any(-1)
        first = torch.argmax(dip.to(torch.int8), dim=-1)  # first True (0 when none)
        tau = first + lo
        y0 = cmnd.gather(-1, (tau - 1)[..., None])[..., 0]
        y1 = cmnd.gather(-1, tau[..., None])[..., 0]
        y2 = cmnd.gather(-1, (tau + 1)[..., None])[..., 0]
        curve = y0 - 2 * y1 + y2
        shift = torch.where(curve > 0, 0.5 * (y0 - y2) / curve.clamp(min=1e-12), torch.zeros_like(curve))
        f0 = self.sample_rate / (tau.double() + shift.clamp(-0.5, 0.5))
        rms = recent.pow(2).mean(-1).sqrt()
        loud = 20 * torch.log10(rms.clamp(min=1e-12)) > self.cfg.silence_db
        return torch.where(found & loud, f0, torch.zeros_like(f0))
