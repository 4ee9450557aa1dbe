"""Token store read speed: sequential, shuffled random access, the windowed shuffle, Hugging Face datasets
on the same store, and `PackedTokenDataset` shuffled against sequential (BENCHMARKS.md, "Token store reads").

    python benchmarks/store_reads.py --out /tmp/store-reads [--items 20000 --rows-per-part 2000]

A synthetic store of random codes (n_q 8, 1024 codes, 5 s items at 50 Hz) is written once under --out and
reused. Each figure is items per second over one pass (the first pass of a fresh reader: decoding and
checksums are paid in the figure).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset
from codeclab.tokens.store import ShardWriter, TokenRecord, TokenStore, merge


def synthetic_meta(n_q: int) -> dict:
    """tokens.json facts of a made-up 16 kHz, 50 Hz codec with `n_q` codebooks of 1024 (int16 codes)."""
    return {
        "codec": {"name": "synthetic", "config_sha256": "c", "weights_sha256": "w"},
        "sample_rate": 16000,
        "channels": 1,
        "hop_length": 320,
        "frame_rate": 50.0,
        "n_q": n_q,
        "codebook_size": 1024,
        "codes_dtype": "int16",
    }


def build(path: Path, items: int, rows_per_part: int, frames: int, n_q: int = 8) -> None:
    if (path / "index.pq").is_file():
        return
    meta = synthetic_meta(n_q)
    rng = np.random.default_rng(0)
    writer = ShardWriter(path, meta)
    for i in range(items):
        codes = rng.integers(0, 1024, (n_q, frames), dtype=np.int16)
        writer.add(TokenRecord(f"utt{i:07d}", codes, f"/corpus/{i}.flac", "0" * 64, frames / 50, 16000))
        if writer.buffered >= rows_per_part:
            writer.flush()
    writer.finish({})
    merge(path)


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def timed(fn) -> tuple[int, float]:
    start = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--rows-per-part", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--sample", type=int, default=4000, help="items read by the slow shuffled paths")
    args = parser.parse_args()
    path = args.out / f"store-{args.items}-{args.rows_per_part}"
    build(path, args.items, args.rows_per_part, args.frames)
    size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    ids = TokenStore(path).ids()
    order = [ids[i] for i in np.random.default_rng(1).permutation(len(ids))]
    results: dict[str, float] = {}

    def sequential() -> int:
        return sum(1 for _ in TokenStore(path))

    def shuffled_access(cache_mb: float):
        def run() -> int:
            store = TokenStore(path, cache_mb=cache_mb)
            for item_id in order[: args.sample]:
                store[item_id]
            return args.sample

        return run

    def windowed() -> int:
        return sum(1 for _ in TokenStore(path, cache_mb=64).shuffled(seed=0, window=4))

    results["sequential"] = rate(*timed(sequential))
    results["shuffled store[id], cache 512 MiB"] = rate(*timed(shuffled_access(512)))
    results["shuffled store[id], cache 16 MiB"] = rate(*timed(shuffled_access(16)))
    results["store.shuffled(window=4), cache 64 MiB"] = rate(*timed(windowed))
    try:
        import datasets

        ds = datasets.load_dataset(str(path), split="train")
        perm = np.random.default_rng(1).permutation(len(ds))[: args.sample].tolist()
        results["HF datasets shuffled ds[i]"] = rate(
            *timed(lambda: sum(1 for i in perm if ds[i] is not None))
        )
    except ImportError:
        pass

    def packed(shuffle: bool, window: int | None = None):
        def run() -> int:
            dataset = TokenDataset(TokenStore(path), pattern="flatten", n_q=8)
            packed = PackedTokenDataset(dataset, 8192, shuffle=shuffle, shuffle_window=window)
            return sum(len(seq["ids"]) for seq in packed)

        return run

    results["PackedTokenDataset sequential"] = rate(*timed(packed(False)))
    results["PackedTokenDataset shuffled"] = rate(*timed(packed(True)))
    results["PackedTokenDataset shuffled, window 4"] = rate(*timed(packed(True, 4)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "store": {
            "items": len(ids),
            "rows_per_part": args.rows_per_part,
            "frames": args.frames,
            "mb": round(size_mb, 1),
        },
        "items_per_second": results,
        "peak_rss_mb": round(peak_mb),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
