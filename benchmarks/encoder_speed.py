"""Encoder speed of codeclab presets against EnCodec 24 kHz on the same audio (CPU).

Corpus tokenization runs only the encoder, so this is the figure that decides tokenization cost.
EnCodec comes from Hugging Face transformers with random weights (no download here); speed does not
depend on the weight values. Each codec gets the same speech-like clips at its own sample rate.

    python benchmarks/encoder_speed.py [--batch 8] [--seconds 10] [--reps 3] [--threads 2]

Prints a Markdown table (x real time = seconds of audio encoded per second of wall time).
"""

from __future__ import annotations

import argparse
import time

import torch

from codeclab.audio.signals import synthetic_speech
from codeclab.catalog.loading import load_codec
from codeclab.eval.machine import describe_machine


def clips(batch: int, seconds: float, sample_rate: int) -> torch.Tensor:
    return torch.stack([synthetic_speech(seconds, sample_rate, seed=i) for i in range(batch)])  # [B, 1, T]


def time_call(fn, reps: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def encodec_encoder(batch: int, seconds: float, reps: int) -> float | None:
    try:
        from transformers import EncodecConfig, EncodecModel
    except ImportError:
        print("transformers is not installed: skipping EnCodec (pip install 'codeclab[peers]')")
        return None
    torch.manual_seed(0)
    model = EncodecModel(EncodecConfig()).eval()  # the architecture of facebook/encodec_24khz
    wav = clips(batch, seconds, 24000)
    with torch.inference_mode():
        return time_call(lambda: model.encode(wav, bandwidth=6.0), reps)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--codecs", nargs="+", default=["codeclab-16k-speech", "codeclab-24k-audio", "codeclab-16k-fsq"]
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    audio_seconds = args.batch * args.seconds

    rows: list[tuple[str, float]] = []
    encodec = encodec_encoder(args.batch, args.seconds, args.reps)
    if encodec is not None:
        rows.append(("encodec-24khz (transformers, 8 codebooks)", audio_seconds / encodec))
    for name in args.codecs:
        codec = load_codec(name, random_init=True)
        wav = clips(args.batch, args.seconds, codec.sample_rate)
        rows.append((name, audio_seconds / time_call(lambda c=codec, w=wav: c.encode(w), args.reps)))

    print(
        f"\nmachine: {describe_machine()}\nbatch {args.batch} x {args.seconds:g} s, mean of {args.reps} runs after a warm-up\n"
    )
    base = rows[0][1] if encodec is not None else None
    print("| codec | encode x real time | vs EnCodec 24k |")
    print("|---|---|---|")
    for name, speed in rows:
        ratio = f"{speed / base:.1f}x" if base else "-"
        print(f"| {name} | {speed:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
