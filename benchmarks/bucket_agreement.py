"""What padding items to a few fixed lengths (`pad_to_buckets`) costs each peer, as a Markdown table.

    python benchmarks/bucket_agreement.py [--buckets 1 2 4] [--items 6] [--codecs NAME ...]

A `torch.compile`d model with static shapes is traced again for every new input length; buckets give it
only a few. Each item is padded with zeros to its bucket and its codes and audio are cut back to its own
length. A causal model cannot see the padding (codes and audio as without buckets); a non-causal one sees
zeros after the item where it saw its own edge padding before. Measured here on speech-like items of
random lengths (0.3-2.5 s) with random-init weights: input shapes the model saw, share of codes equal to
the unbucketed encode, the largest decoded-audio difference relative to the unbucketed audio's peak, and
how far before an item's end the audio first differs by more than 1e-3 of that peak (0: nowhere).
"""

from __future__ import annotations

import argparse

import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.catalog.registry import entries
from codeclab.eval.machine import describe_machine


def measure(codec, seconds: list[float], buckets: list[float]) -> tuple[int, int, float, float, float]:
    """(shapes without, shapes with buckets, share of equal codes, max audio difference / peak, how far
    before an item's end its audio first differs by over 1e-3 of the peak, in ms, the most over items)."""
    lengths = [int(s * codec.sample_rate) for s in seconds]
    wav = torch.zeros(len(lengths), codec.channels, max(lengths))
    for b, n in enumerate(lengths):
        wav[b, :, :n] = synthetic_speech(n / codec.sample_rate, codec.sample_rate, seed=b)[:, :n] * 0.5
    lengths_t = torch.tensor(lengths)
    shapes: set[tuple[int, ...]] = set()
    padded_item = codec._padded_item

    def recording(item, length):
        x = padded_item(item, length)
        shapes.add(tuple(x.shape))
        return x

    codec._padded_item = recording
    plain = codec.encode(wav, lengths=lengths_t)
    plain_audio = codec.decode(plain)
    unbucketed, shapes = len(shapes), set()
    codec.pad_to_buckets(buckets)
    bucketed = codec.encode(wav, lengths=lengths_t)
    audio = codec.decode(bucketed)
    codec.pad_to_buckets(None)
    del codec._padded_item
    share = float((bucketed.codes == plain.codes).float().mean())
    peak = plain_audio.abs().max().clamp_min(1e-9)
    diff = float((audio - plain_audio).abs().max() / peak)
    reach = 0.0
    for b, n in enumerate(lengths):
        differs = ((audio[b, :, :n] - plain_audio[b, :, :n]).abs().amax(dim=0) > 1e-3 * peak).nonzero()
        if len(differs):
            reach = max(reach, 1000 * (n - int(differs[0])) / codec.sample_rate)
    return unbucketed, len(shapes), share, diff, reach


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buckets", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codecs", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.codecs or sorted(n for n, e in entries().items() if e.family == "peer")
    gen = torch.Generator().manual_seed(0)
    seconds = [round(0.3 + 2.2 * float(u), 3) for u in torch.rand(args.items, generator=gen)]
    print(f"machine: {describe_machine()}\nitems (s): {seconds}; buckets (s): {args.buckets}\n")
    print(
        "| codec | causal | input shapes: plain / bucketed | codes equal | max audio difference / peak "
        "| audio differs from (ms before the end) |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        codec = codeclab.load_codec(name, random_init=True)
        plain, bucketed, share, diff, reach = measure(codec, seconds, args.buckets)
        causal = {True: "yes", False: "no"}.get(entries()[name].causal, "?")
        print(
            f"| {name} | {causal} | {plain} / {bucketed} | {share:.3f} | {diff:.2e} | {reach:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
