"""Spectrograms of a clip and of its decodings (one row per codec), to see the harmonics a decoder keeps.

    python benchmarks/spectrogram_figure.py tests/assets/speech/it_IT_m_Carlo__vm-intro.flac \
        --codec codeclab-16k-speech --codec runs/v3-weights/codeclab/catalog/weights/codeclab-16k-speech \
        --label "version 4" --label "version 3" --seconds 3 --out docs/images/codeclab-16k-speech-spectrogram.png

A `--codec` is a codec name or a weights directory (`codeclab.load_codec`); each is decoded at all its
codebooks. Needs matplotlib (the bench extra).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def log_spectrogram(x: np.ndarray, n_fft: int = 1024, hop: int = 128) -> np.ndarray:
    """|STFT| in dB [bins, frames] of x [T] (Hann window)."""
    spec = torch.stft(
        torch.as_tensor(x, dtype=torch.float32),
        n_fft,
        hop,
        window=torch.hann_window(n_fft),
        return_complex=True,
    )
    return 20 * np.log10(spec.abs().numpy() + 1e-5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clip")
    parser.add_argument("--codec", action="append", required=True)
    parser.add_argument("--label", action="append", default=[])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import codeclab
    from codeclab.audio.io import load_audio

    rows = []
    for i, name in enumerate(args.codec):
        codec = codeclab.load_codec(name).eval()
        wav = torch.as_tensor(load_audio(args.clip, codec.sample_rate, 1))[
            None, :, : int(args.seconds * codec.sample_rate)
        ]
        if not rows:
            rows.append(("input", wav[0, 0].numpy(), codec.sample_rate))
        with torch.no_grad():
            out = codec.decode(codec.encode(wav))[0, 0, : wav.shape[-1]].numpy()
        label = args.label[i] if i < len(args.label) else name
        rows.append(
            (f"{label} (n_q {codec.num_codebooks}, {codec.bitrate() / 1000:g} kbps)", out, codec.sample_rate)
        )
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 2.4 * len(rows)), sharex=True)
    for ax, (title, x, sr) in zip(np.atleast_1d(axes), rows):
        spec = log_spectrogram(x)
        extent = (0, len(x) / sr, 0, sr / 2000)
        ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=spec.max() - 80,
            vmax=spec.max(),
            cmap="magma",
        )
        ax.set_ylabel("kHz")
        ax.set_title(title, fontsize=10)
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
