"""Discriminators: multi-period (HiFi-GAN MPD) and multi-scale STFT (EnCodec MS-STFTD).

Each discriminator maps wav [B, 1, T] to (logits, feature maps); `Discriminators` runs a set of them and
returns lists, one entry per sub-discriminator.

Papers: HiFi-GAN, https://arxiv.org/abs/2010.05646 (MPD); EnCodec, https://arxiv.org/abs/2210.13438 (MS-STFTD).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into [B, 1, T / p, p] and applies 2-d convolutions along time."""

    def __init__(self, period: int, channels: tuple[int, ...] = (32, 128, 512, 1024)) -> None:
        super().__init__()
        self.period = period
        layers, in_ch = [], 1
        for ch in channels:
            layers.append(weight_norm(nn.Conv2d(in_ch, ch, (5, 1), (3, 1), padding=(2, 0))))
            in_ch = ch
        layers.append(weight_norm(nn.Conv2d(in_ch, in_ch, (5, 1), 1, padding=(2, 0))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(in_ch, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, c, t = wav.shape
        if t % self.period:
            wav = F.pad(
                wav, (0, self.period - t % self.period), mode="reflect" if t > self.period else "constant"
            )
        x = wav.view(b, c, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.out(x)
        features.append(x)
        return x.flatten(1), features


class STFTDiscriminator(nn.Module):
    """2-d convolutions over the complex STFT (real and imaginary parts as channels)."""

    window: Tensor  # a registered buffer

    def __init__(self, n_fft: int, channels: int = 32, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [weight_norm(nn.Conv2d(2, channels, (3, 9), padding=(1, 4)))]
        for d in dilations:
            layers.append(
                weight_norm(
                    nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))
                )
            )
        layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float().flatten(0, 1), self.n_fft, self.hop, window=self.window, return_complex=True
            )
        x = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, freq]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        x = self.out(x)
        features.append(x)
        return x.flatten(1), features


class Discriminators(nn.Module):
    """A set of discriminators: kinds "mpd" (periods 2, 3, 5, 7, 11) and/or "msstft" (FFT 2048, 1024, 512);
    `width` scales their channels (1.0: HiFi-GAN's and EnCodec's sizes)."""

    def __init__(
        self, kinds=("mpd", "msstft"), periods=(2, 3, 5, 7, 11), n_ffts=(2048, 1024, 512), width: float = 1.0
    ) -> None:
        super().__init__()
        subs: list[nn.Module] = []
        mpd_channels = tuple(max(4, int(c * width)) for c in (32, 128, 512, 1024))
        for kind in kinds:
            if kind == "mpd":
                subs += [PeriodDiscriminator(p, mpd_channels) for p in periods]
            elif kind == "msstft":
                subs += [STFTDiscriminator(n, channels=max(4, int(32 * width))) for n in n_ffts]
            else:
                raise ValueError(f"unknown discriminator {kind!r}; use 'mpd' and/or 'msstft'")
        if not subs:
            raise ValueError("no discriminators configured")
        self.subs = nn.ModuleList(subs)

    def forward(self, wav: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        logits, features = [], []
        for sub in self.subs:
            out, feats = sub(wav)
            logits.append(out)
            features.append(feats)
        return logits, features
