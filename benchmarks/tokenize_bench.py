"""End-to-end tokenization throughput: read + decode + resample + encode + write, x real time.

Builds a synthetic corpus (speech-like clips of 4-30 s; WAV 16 kHz, FLAC 44.1 kHz stereo, WAV 48 kHz),
then runs the same code path as `codeclab tokenize` and prints x real time and where the time went.

    python benchmarks/tokenize_bench.py --minutes 20 --workers 1 [--device cpu] [--codec codeclab-16k-speech]
    python benchmarks/tokenize_bench.py --minutes 20 --engine ray [--actors 1]   # Ray Data, local cluster

With --engine ray the local Ray cluster is started first (its start-up is timed apart) and the wall time
is the job's, from planning to merge, as for the local engine.
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
from codeclab.catalog.ref import CodecRef
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
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--actors", type=int, default=1, help="--engine ray: encoder actors")
    parser.add_argument(
        "--actor-threads", type=int, default=None, help="--engine ray: torch threads per actor"
    )
    parser.add_argument("--batch-items", type=int, default=64, help="--engine ray: items per actor call")
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
            codec=CodecRef(args.codec, random_init=True),
            device=args.device,
            workers=args.workers,
            batch_seconds=args.batch_seconds,
        )
        startup = 0.0
        if args.engine == "ray":
            from codeclab.pipelines.ray_engine import RayOptions, start_ray, tokenize_with_ray

            begin = time.perf_counter()
            start_ray(None)
            startup = time.perf_counter() - begin
        start = time.perf_counter()
        if args.engine == "ray":
            ray_options = RayOptions(
                actors=args.actors, threads_per_actor=args.actor_threads, batch_items=args.batch_items
            )
            report = tokenize_with_ray(options, ray_options)
        else:
            report = tokenize_corpus(options)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmachine: {describe_machine()}")
    print(
        f"corpus: {report.items} files, {seconds / 60:.1f} min (WAV 16 kHz mono, FLAC 44.1 kHz stereo, WAV 48 kHz mono)"
    )
    engine = (
        f"Ray ({args.actors} actor(s), {args.actor_threads or 1} thread(s) each, {args.batch_items} items per "
        f"call; cluster start-up {startup:.1f} s, not in the wall time)"
        if args.engine == "ray"
        else f"local, {args.workers} decode worker(s)"
    )
    print(f"codec {args.codec} (random init) on {args.device}, engine {engine}\n")
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
