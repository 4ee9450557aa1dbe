"""How close a chunked encode of a long file is to a whole pass, per codec and chunk size, as a table.

    python benchmarks/long_file_agreement.py [--seconds 24] [--chunks 2 5 10] [--codecs NAME ...]

`codeclab tokenize` encodes files over --long-seconds in chunks (`codeclab.codecs.chunked.encode_stream`)
with each codec's `long_file_context`: codeclab's codecs carry their exact encoder context (chunked ==
whole, share 1.0); Mimi and EnCodec go through a streaming state (exact); other peers carry a stated window
(2 s of audio each side) because their attention or recurrence reaches further, so codes near a chunk
edge may differ. This measures the share of codes equal
to a whole pass, over all codebooks and for the first one, on a speech-like signal with random-init
weights (no downloads here; trained weights may agree more or less).
"""

from __future__ import annotations

import argparse

import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.catalog.registry import entries
from codeclab.codecs.chunked import encode_chunked
from codeclab.eval.machine import describe_machine


def agreement(codec, seconds: float, chunk_seconds: float) -> tuple[float, float, int]:
    """(share of equal codes over all codebooks, share for codebook 0, distinct codes of codebook 0 in the
    whole pass), chunked against whole. A random-init model whose codebook collapses to one code agrees
    trivially: the distinct count says whether a row means anything."""
    wav = synthetic_speech(seconds, codec.sample_rate, seed=1).repeat(codec.channels, 1) * 0.5
    whole = codec.encode(wav[None]).codes[0]
    chunked = encode_chunked(codec, wav, chunk_seconds=chunk_seconds).codes[0]
    if chunked.shape != whole.shape:
        raise AssertionError(
            f"{codec.name}: chunked codes {tuple(chunked.shape)} != whole {tuple(whole.shape)}"
        )
    same = chunked == whole
    return float(same.float().mean()), float(same[0].float().mean()), len(torch.unique(whole[0]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=24.0)
    parser.add_argument("--chunks", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codecs", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.codecs or sorted(n for n, e in entries().items() if e.family != "classic")
    print(
        f"machine: {describe_machine()}\naudio: {args.seconds:g} s speech-like signal; random-init weights\n"
    )
    heads = " | ".join(f"{c:g} s chunks: all / q0" for c in args.chunks)
    print(f"| codec | exact | context each side | distinct q0 codes | {heads} |")
    print("|---|---|---|---|" + "---|" * len(args.chunks))
    for name in names:
        codec = codeclab.load_codec(name, random_init=True)
        context = codec.long_file_context()
        if context is None:
            print(f"| {name} | - | none: encoded whole | - |" + " - |" * len(args.chunks))
            continue
        cells, distinct = [], 0
        for chunk in args.chunks:
            share, first, distinct = agreement(codec, args.seconds, chunk)
            cells.append(f"{share:.3f} / {first:.3f}")
        window = f"{context[0] / codec.sample_rate:.3g} s"
        if codec.long_file_streamer() is not None:
            window = "its own streaming state"
        exact = "yes" if codec.long_file_exact else "no"
        print(f"| {name} | {exact} | {window} | {distinct} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
