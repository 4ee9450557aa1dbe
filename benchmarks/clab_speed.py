"""What range coding adds to `codeclab encode` / `decode`: the same audio file encoded and decoded with
`--coding bits` and `--coding range` (library calls, as the CLI makes them), median of reps, and the time
of the coding step alone.

    python benchmarks/clab_speed.py AUDIO [--codec codeclab-16k-speech] [--reps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from codeclab.catalog.ref import CodecRef
from codeclab.eval.machine import describe_machine
from codeclab.pipelines.clab_files import decode_file, encode_file, resolve_coding
from codeclab.tokens.clab import read_clab
from codeclab.tokens.clab_packet_reader import read_packets
from codeclab.tokens.clab_packets import write_packets


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("audio")
    parser.add_argument("--codec", default="codeclab-16k-speech")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = CodecRef(args.codec)
    codec = spec.load()
    _, model = resolve_coding(codec, "range")
    work = Path(tempfile.mkdtemp())
    targets = {coding: work / f"{coding}.clab" for coding in ("bits", "range")}
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.reps + 1):  # interleaved, so both codings meet the same machine; rep 0 warms up
        for coding, target in targets.items():
            for step, call in (
                ("encode", lambda c=coding, t=target: encode_file(args.audio, t, spec, coding=c)),
                ("decode", lambda t=target: decode_file(t, work / "out.wav")),
            ):
                start = time.perf_counter()
                call()
                if rep:
                    times.setdefault((coding, step), []).append(time.perf_counter() - start)
    rows = []
    for coding, target in targets.items():
        clab = read_clab(target, model=model)
        header = {k: v for k, v in clab.header.items() if k not in ("n_q", "bits", "coding", "entropy_model")}
        write = timed(lambda c=coding, h=header, k=clab.codes: write_packets(k, h, c, model), args.reps)
        blob = target.read_bytes()
        read = timed(lambda b=blob: read_packets(b, model=model), args.reps)
        seconds = clab.audio_length / codec.sample_rate
        enc, dec = (statistics.median(times[(coding, step)]) for step in ("encode", "decode"))
        rows.append((coding, enc, dec, write, read, len(blob) * 8 / seconds / 1000, seconds))
    print(
        f"machine: {describe_machine()}; torch threads {args.threads}; {args.audio} ({rows[0][-1]:.1f} s)\n"
    )
    print("| coding | encode file (s) | decode file (s) | write packets (s) | read packets (s) | file kbps |")
    print("|---|---|---|---|---|---|")
    for coding, enc, dec, write, read, kbps, _ in rows:
        print(f"| {coding} | {enc:.3f} | {dec:.3f} | {write:.4f} | {read:.4f} | {kbps:.2f} |")
    bits, ranged = rows
    print(
        f"\nrange coding adds {100 * (ranged[1] / bits[1] - 1):+.1f} % to encode and "
        f"{100 * (ranged[2] / bits[2] - 1):+.1f} % to decode (whole calls, interleaved, medians of {args.reps})"
    )


if __name__ == "__main__":
    main()
