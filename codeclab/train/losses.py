"""Reconstruction and adversarial losses for codec training.

- `MultiScaleMelLoss`: L1 between log mel spectrograms at several window sizes (DAC / HiFi-GAN style).
- `MultiResolutionSTFTLoss`: auraloss's spectral convergence + log magnitude loss.
- `PhaseLoss`: anti-wrapping instantaneous-phase, group-delay and instantaneous-frequency losses (NSPP,
  https://arxiv.org/abs/2211.15974), weighted by the reference's magnitude.
- `waveform_l1`, adversarial losses (hinge or least squares) and feature matching.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeclab.audio.spectral import default_mel_scales, log_mel


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of |log mel(estimate) - log mel(reference)|; inputs [B, C, T]."""

    def __init__(self, sample_rate: int, scales: list[tuple[int, int]] | None = None) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.scales = scales or default_mel_scales(sample_rate)

    def forward(self, estimate: Tensor, reference: Tensor) -> Tensor:
        total = estimate.new_zeros((), dtype=torch.float32)
        for n_fft, n_mels in self.scales:
            a = log_mel(estimate, self.sample_rate, n_fft, n_mels)
            b = log_mel(reference, self.sample_rate, n_fft, n_mels)
            total = total + (a - b).abs().mean()
        return total / len(self.scales)


class MultiResolutionSTFTLoss(nn.Module):
    """auraloss's multi-resolution STFT loss (spectral convergence + log magnitude), fp32."""

    def __init__(self) -> None:
        super().__init__()
        import auraloss

        self.loss = auraloss.freq.MultiResolutionSTFTLoss()

    def forward(self, estimate: Tensor, reference: Tensor) -> Tensor:
        with torch.autocast(device_type=estimate.device.type, enabled=False):
            return self.loss(estimate.float(), reference.float())


def anti_wrap(x: Tensor) -> Tensor:
    """|x - 2 pi round(x / 2 pi)|: the distance of a phase difference to the nearest multiple of 2 pi."""
    return (x - 2 * torch.pi * torch.round(x / (2 * torch.pi))).abs()


class PhaseLoss(nn.Module):
    """Phase of estimate against reference [B, C, T] at one STFT framing (320 / 80 by default): the mean
    anti-wrapped error of the instantaneous phase, the group delay (phase difference along frequency) and
    the instantaneous frequency (along time), each weighted by the reference's normalised magnitude so
    that silent bins, whose phase is noise, do not count."""

    window: Tensor  # a registered buffer

    def __init__(self, n_fft: int = 320, hop: int = 80) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def _stft(self, x: Tensor) -> Tensor:
        return torch.stft(
            x.float().reshape(-1, x.shape[-1]), self.n_fft, self.hop, window=self.window, return_complex=True
        )

    def forward(self, estimate: Tensor, reference: Tensor) -> Tensor:
        with torch.autocast(device_type=estimate.device.type, enabled=False):
            est, ref = self._stft(estimate), self._stft(reference)
            weight = ref.abs()
            weight = weight / weight.mean().clamp(min=1e-8)
            p_est, p_ref = torch.angle(est), torch.angle(ref.detach())
            ip = anti_wrap(p_est - p_ref)
            gd = anti_wrap(torch.diff(p_est, dim=1) - torch.diff(p_ref, dim=1))
            iaf = anti_wrap(torch.diff(p_est, dim=2) - torch.diff(p_ref, dim=2))
            return (ip * weight).mean() + (gd * weight[:, 1:]).mean() + (iaf * weight[:, :, 1:]).mean()


def waveform_l1(estimate: Tensor, reference: Tensor) -> Tensor:
    return F.l1_loss(estimate.float(), reference.float())


def discriminator_loss(real: list[Tensor], fake: list[Tensor], kind: str = "hinge") -> Tensor:
    """Sum over discriminators of the loss on real logits (-> 1) and fake logits (-> -1 / 0)."""
    total = real[0].new_zeros(())
    for r, f in zip(real, fake):
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        elif kind == "lsgan":
            total = total + (r - 1).pow(2).mean() + f.pow(2).mean()
        else:
            raise ValueError(f"unknown adversarial loss {kind!r}; use 'hinge' or 'lsgan'")
    return total / len(real)


def generator_adversarial_loss(fake: list[Tensor], kind: str = "hinge") -> Tensor:
    total = fake[0].new_zeros(())
    for f in fake:
        total = total + (F.relu(1 - f).mean() if kind == "hinge" else (f - 1).pow(2).mean())
    return total / len(fake)


def feature_matching_loss(real_features: list[list[Tensor]], fake_features: list[list[Tensor]]) -> Tensor:
    """Mean over discriminators and layers of |f(fake) - f(real)| / mean |f(real)| (EnCodec's relative L1)."""
    total, count = None, 0
    for rs, fs in zip(real_features, fake_features):
        for r, f in zip(rs, fs):
            term = (f - r.detach()).abs().mean() / (r.detach().abs().mean() + 1e-8)
            total = term if total is None else total + term
            count += 1
    return total / max(count, 1)


def loss_weights(cfg: Any) -> dict[str, float]:
    """The weight of each named generator loss (a `TrainConfig`'s `*_weight` fields)."""
    return {
        "mel": cfg.mel_weight,
        "stft": cfg.stft_weight,
        "phase": cfg.phase_weight,
        "waveform": cfg.waveform_weight,
        "adv": cfg.adv_weight,
        "fm": cfg.fm_weight,
    }


class SpectralLosses:
    """The non-adversarial reconstruction losses a step uses, by name: mel always; STFT from
    `stft_start` (when weighted); phase and waveform L1 when weighted. `cfg`: a `TrainConfig`."""

    def __init__(self, cfg: Any, sample_rate: int) -> None:
        self.cfg = cfg
        self.mel = MultiScaleMelLoss(sample_rate)
        self.stft = MultiResolutionSTFTLoss() if cfg.stft_weight > 0 else None
        self.phase = PhaseLoss() if cfg.phase_weight > 0 else None

    def __call__(self, recon: Tensor, wav: Tensor, step: int) -> dict[str, Tensor]:
        """Losses of recon against wav [B, C, T] at `step`."""
        losses: dict[str, Tensor] = {"mel": self.mel(recon, wav)}
        if self.stft is not None and step >= self.cfg.stft_start:
            losses["stft"] = self.stft(recon, wav)
        if self.phase is not None:
            losses["phase"] = self.phase(recon, wav)
        if self.cfg.waveform_weight > 0:
            losses["waveform"] = waveform_l1(recon, wav)
        return losses
