"""Encode/decode speed of every registered token codec on the same audio (x real time), as a Markdown table.

    python benchmarks/codec_speed.py [--seconds 10] [--batch 2] [--reps 3] [--threads 2] [--codecs NAME ...]

Peers run with random weights (no downloads here): speed does not depend on weight values. Peer adapters
encode item by item (exact batching), so their batch costs the sum of its items.
"""

from __future__ import annotations

import argparse

import torch

import codeclab
from codeclab.catalog.registry import entries
from codeclab.eval.machine import describe_machine
from codeclab.eval.speed import measure_speed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codecs", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.codecs or sorted(
        n for n, e in entries().items() if e.family != "classic" and n != "codeclab-tiny"
    )
    print(
        f"machine: {describe_machine()}\naudio: {args.batch} speech-like clips x {args.seconds:g} s per call; "
        f"median of {args.reps} after a warm-up; random-init weights\n"
    )
    print(
        "| codec | encode x real time | decode x real time | frames/s | encode peak MiB | decode peak MiB |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        codec = codeclab.load_codec(name, random_init=True)
        r = measure_speed(codec, args.seconds, args.batch, args.reps)
        fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        print(
            f"| {name} | {r.encode_xrt:.1f} | {r.decode_xrt:.1f} | {r.frames_per_second:.0f} | {fmt(r.encode_peak_mib)} | {fmt(r.decode_peak_mib)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
