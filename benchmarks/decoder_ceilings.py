"""Zero-training ceilings of candidate decoders on a manifest (docs/training.md, "Decoder ceilings").

Each row resynthesises the held-out audio from an oracle of what a decoder could be given, and scores it
against the original (PESQ-WB, STOI, mel distance): true magnitudes or a cepstrally smoothed envelope
(2 ms lifter), at the shipped 80 ms framing (1280/320) or a 5 ms one (320/80), with random phase or with a
harmonic-plus-noise excitation driven by F0 (DIO + StoneMask, or codeclab's own causal YIN tracker, sent
as 5 or 7 bits per 20 ms frame). No training; needs `pip install pyworld-prebuilt pesq pystoi`.

    python benchmarks/decoder_ceilings.py speech-corpus/heldout-eval.jsonl --max-items 16 --max-seconds 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

SR = 16000


def stft(x: np.ndarray, n: int) -> torch.Tensor:
    window = torch.hann_window(n, periodic=True, dtype=torch.float64)
    return torch.stft(torch.as_tensor(x), n, n // 4, window=window, center=True, return_complex=True)


def istft(spec: torch.Tensor, n: int, length: int) -> np.ndarray:
    window = torch.hann_window(n, periodic=True, dtype=torch.float64)
    return torch.istft(spec, n, n // 4, window=window, center=True, length=length).numpy()


def envelope(mag: torch.Tensor, n: int, lifter: int = 32) -> torch.Tensor:
    """Cepstrally smoothed magnitude [bins, frames] (no harmonic fine structure)."""
    cep = torch.fft.irfft(torch.log(mag.clamp_min(1e-7)), n=n, dim=0)
    keep = torch.zeros(n, dtype=cep.dtype)
    keep[:lifter] = 1
    keep[-lifter + 1 :] = 1
    return torch.exp(torch.fft.rfft(cep * keep[:, None], n=n, dim=0).real)


def quantize_f0(f0: np.ndarray, bits: int) -> np.ndarray:
    """F0 per 20 ms frame (0 = unvoiced) on a log grid of 2**bits - 1 levels over 60-500 Hz."""
    lo, hi, top = np.log(60.0), np.log(500.0), 2**bits - 2
    q = np.round((np.log(np.clip(f0, 60, 500)) - lo) / (hi - lo) * top)
    return np.where(f0 > 0, np.exp(lo + q / top * (hi - lo)), 0.0)


def dio_f0(x: np.ndarray) -> np.ndarray:
    import pyworld

    f0, t = pyworld.dio(x, SR, frame_period=5.0)
    return pyworld.stonemask(x, f0, t, SR)[::4]  # frame centres every 20 ms


def yin_f0(x: np.ndarray) -> np.ndarray:
    """codeclab's causal tracker: frame f measured on the audio that ends where frame f ends."""
    from codeclab.codecs.modules.pitch import PitchConfig, PitchTracker

    tracker = PitchTracker(PitchConfig(), SR, 320)
    frames = -(-len(x) // 320)
    wav = torch.nn.functional.pad(torch.as_tensor(x)[None, None], (0, frames * 320 - len(x)))
    return tracker.track(wav)[0].numpy()


def excitation(n: int, f0: np.ndarray, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Harmonics of F0 (interpolated per sample) where voiced, white noise elsewhere."""
    ts = np.arange(n) / SR
    f = np.interp(ts, times, f0)
    voiced = np.interp(ts, times, (f0 > 0) * 1.0) > 0.5
    f = np.where(voiced, np.maximum(f, 40), 100.0)
    phase = 2 * np.pi * np.cumsum(f) / SR
    e = sum(np.where(voiced & (k * f < 7800), np.cos(k * phase), 0.0) for k in range(1, 201))
    return np.where(voiced, e / (np.std(e) + 1e-9), rng.standard_normal(n))


def source_filter(mag: torch.Tensor, e: np.ndarray, n: int, length: int, hold: int = 1) -> np.ndarray:
    """|envelope of mag| x (excitation / its own envelope) at n / (n / 4); hold > 1 averages the log
    envelope over `hold` frames and interpolates it back (hold 2 at 320/80: a 100 Hz envelope)."""
    env = envelope(mag, n)
    spec = stft(e, n)
    flat = spec / envelope(spec.abs(), n)
    if hold > 1:
        log_env, frames = torch.log(env), env.shape[1]
        d = torch.nn.functional.pad(log_env[None], (0, (-frames) % hold), mode="replicate")[0]
        d = d.reshape(d.shape[0], -1, hold).mean(-1)
        up = torch.nn.functional.interpolate(d[None], size=d.shape[1] * hold, mode="linear")[0]
        env = torch.exp(up[:, :frames])
    return istft(env * flat, n, length)


def random_phase(mag: torch.Tensor, n: int, length: int, gen: torch.Generator) -> np.ndarray:
    return istft(
        torch.polar(mag, torch.rand(mag.shape, generator=gen, dtype=mag.dtype) * 2 * np.pi), n, length
    )


def rows_for(x: np.ndarray, codec, rng: np.random.Generator, gen: torch.Generator) -> dict[str, np.ndarray]:
    """Every condition's resynthesis of one clip x [T]."""
    import pyworld

    n, out = len(x), {}
    with torch.no_grad():
        y = codec.decode(codec.encode(torch.tensor(x, dtype=torch.float32)[None, None], n_q=8))[0, 0]
    out["shipped codec, n_q 8"] = y.double().numpy()
    dio, yin = dio_f0(x), yin_f0(x)
    centres = np.arange(len(dio)) * 0.02
    ends = (np.arange(len(yin)) + 1) * 0.02  # YIN frame f describes the 20 ms that end here
    excite = {bits: excitation(n, quantize_f0(dio, bits), centres, rng) for bits in (5, 7)}
    excite_yin = excitation(n, quantize_f0(yin, 7), ends, rng)
    excite_yin_centred = excitation(n, quantize_f0(yin, 7), ends - 0.01, rng)
    for nfft in (1280, 320):
        mag = stft(x, nfft).abs()
        frame = f"{nfft}/{nfft // 4}"
        out[f"{frame} true magnitude + random phase"] = random_phase(mag, nfft, n, gen)
        out[f"{frame} envelope + random phase"] = random_phase(envelope(mag, nfft), nfft, n, gen)
        hold = 2 if nfft == 320 else 1
        rate = SR // (nfft // 4) // hold
        for bits in (5, 7):
            out[f"{frame} envelope ({rate} Hz) x {bits}-bit DIO F0 excitation"] = source_filter(
                mag, excite[bits], nfft, n, hold
            )
        if nfft == 320:
            out[f"{frame} envelope ({rate} Hz) x 7-bit causal-YIN F0 excitation"] = source_filter(
                mag, excite_yin, nfft, n, hold
            )
            out[f"{frame} envelope ({rate} Hz) x 7-bit causal-YIN F0, 10 ms earlier"] = source_filter(
                mag, excite_yin_centred, nfft, n, hold
            )
            out[f"{frame} shipped codec's envelope x 7-bit DIO F0 excitation"] = source_filter(
                stft(out["shipped codec, n_q 8"], 320).abs(), excite[7], 320, n, hold
            )
    f5, t5 = pyworld.dio(x, SR, frame_period=5.0)
    f5 = pyworld.stonemask(x, f5, t5, SR)
    sp, ap = pyworld.cheaptrick(x, f5, t5, SR), pyworld.d4c(x, f5, t5, SR)
    out["WORLD copy-synthesis (DIO, unquantized)"] = pyworld.synthesize(f5, sp, ap, SR, frame_period=5.0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest")
    parser.add_argument("--max-items", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--codec", default="codeclab-16k-speech")
    args = parser.parse_args(argv)
    try:
        import pyworld  # noqa: F401
        from pesq import pesq
        from pystoi import stoi
    except ImportError as err:
        print(f"needs {err.name}: pip install pyworld-prebuilt pesq pystoi", file=sys.stderr)
        return 2
    import codeclab
    from codeclab.audio.io import load_audio
    from codeclab.audio.loudness import normalise_loudness
    from codeclab.audio.spectral import mel_distance
    from codeclab.corpora.manifest import read_manifest

    codec = codeclab.load_codec(args.codec).eval()
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    scores: dict[str, list[tuple[float, float, float]]] = {}
    items = read_manifest(args.manifest)[: args.max_items]
    for item in items:
        x = load_audio(item.path, SR, 1, item.start, item.end)[0][: int(args.max_seconds * SR)]
        x = normalise_loudness(x, -20.0).astype(np.float64)
        for name, y in rows_for(x, codec, rng, gen).items():
            y = np.pad(np.asarray(y, dtype=np.float64)[: len(x)], (0, max(0, len(x) - len(y))))
            mel = float(
                mel_distance(
                    torch.tensor(x[None], dtype=torch.float32), torch.tensor(y[None], dtype=torch.float32), SR
                )
            )
            scores.setdefault(name, []).append((pesq(SR, x, y, "wb"), stoi(x, y, SR), mel))
        print(item.id, file=sys.stderr, flush=True)
    print(f"{Path(args.manifest).name}: {len(items)} clips, at most {args.max_seconds:g} s each\n")
    print("| condition | PESQ-WB | STOI | mel distance |\n|---|---|---|---|")
    for name, values in scores.items():
        a = np.array(values)
        print(f"| {name} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.3f} | {a[:, 2].mean():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
