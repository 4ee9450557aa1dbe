"""End-to-end tokenization throughput: read + decode + resample + encode + write, x real time.

Builds a synthetic corpus (speech-like clips of 4-30 s; WAV 16 kHz, FLAC 44.1 kHz stereo, WAV 48 kHz),
then runs the same code path as `codeclab tokenize` and prints x real time and where the time went.

    python benchmarks/tokenize_bench.py --minutes 20 --workers 1 [--device cpu] [--codec codeclab-16k-speech]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.spec import CodecSpec
from codeclab.eval.machine import describe_machine
from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus

FORMATS = [(16000, "wav", 1), (44100, "flac", 2), (48000, "wav", 1)]


def build_corpus(root: Path, minutes: float, seed: int = 0) -> float:
    """Write clips until `minutes` of audio exist; returns seconds written."""
    rng = np.random.default_rng(seed)
    total, i = 0.0, 0
    while total < minutes * 60:
        sr, ext, channels = FORMATS[i % len(FORMATS)]
        seconds = float(rng.uniform(4, 30))
        x = synthetic_speech(seconds, sr, seed=i).numpy()[0]
        if channels == 2:
            x = np.stack([x, 0.7 * x], axis=1)
        sf.write(root / f"clip{i:05d}.{ext}", x, sr)
        total += seconds
        i += 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--codec", default="codeclab-16k-speech")
    parser.add_argument("--batch-seconds", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the main process")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="codeclab-bench-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        seconds = build_corpus(corpus, args.minutes)
        options = TokenizeOptions(
            inputs=[str(corpus)],
            out=work / "store",
            codec=CodecSpec(args.codec, random_init=True),
            device=args.device,
            workers=args.workers,
            batch_seconds=args.batch_seconds,
        )
        start = time.perf_counter()
        report = tokenize_corpus(options)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmachine: {describe_machine()}")
    print(
        f"corpus: {report.items} files, {seconds / 60:.1f} min (WAV 16 kHz mono, FLAC 44.1 kHz stereo, WAV 48 kHz mono)"
    )
    print(f"codec {args.codec} (random init) on {args.device}, {args.workers} decode worker(s)\n")
    print(
        "| files | audio | wall (incl. codec load) | x real time | read+decode | resample | model | write |"
    )
    print("|---|---|---|---|---|---|---|---|")
    p = report.profile
    print(
        f"| {report.tokenized} | {seconds / 60:.1f} min | {wall:.1f} s | {seconds / wall:.1f} | {p['read+decode']:.1f} s | "
        f"{p['resample']:.1f} s | {p['model']:.1f} s | {p['write']:.1f} s |"
    )


if __name__ == "__main__":
    main()
