"""Corpus-scale costs of a tokenize job: planning a 1 M-row manifest per rank, merging a 1 M-item store,
and a reader of it (BENCHMARKS.md, "Corpus scale").

    python benchmarks/corpus_scale.py --out /tmp/scale [--rows 1000000] [--ranks 1,8]

Each measurement runs in a fresh process (peak RSS is that process's, `ru_maxrss`, including the ~100 MB of
an interpreter with numpy, pyarrow and torch imported). The manifest is gzipped JSONL with a speaker and a
split column; the store holds 1 M items of 8 x 25 codes in 500 parts of 2,000 rows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path


def write_manifest(path: Path, rows: int) -> None:
    if path.is_file():
        return
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(rows):
            row = {"id": f"spk{i % 5000:04d}/utt{i:07d}", "path": f"audio/{i % 5000:04d}/{i:07d}.flac"}
            row.update(speaker=f"spk{i % 5000:04d}", split="train" if i % 50 else "dev")
            fh.write(json.dumps(row) + "\n")


def write_store(path: Path, items: int, rows_per_part: int = 2000) -> None:
    if (path / "tokens.json").is_file():
        return
    import numpy as np
    from store_reads import synthetic_meta  # the sibling benchmark's made-up codec

    from codeclab.tokens.store import ShardWriter, TokenRecord

    meta = synthetic_meta(8)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1024, (8, 25), dtype=np.int16)
    writer = ShardWriter(path, meta)
    for i in range(items):
        writer.add(TokenRecord(f"utt{i:07d}", codes, f"/corpus/{i}.flac", "0" * 64, 0.5, 16000))
        if writer.buffered >= rows_per_part:
            writer.flush()
    writer.finish({})


CHILD = {
    "plan": """
import resource, sys, time
from codeclab.corpora.manifest import discover
from codeclab.pipelines.tokenize import in_shard  # a rank's process: torch and the pipeline imported
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
shard, count = int(sys.argv[2]), int(sys.argv[3])
items = discover([sys.argv[1]], keep=None if count == 1 else lambda i: in_shard(i, shard, count))
print(len(items), time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base)
""",
    "merge": """
import resource, sys, time
from codeclab.tokens.store import merge
t = time.perf_counter()
counts = merge(sys.argv[1])
print(counts["items"], time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""",
    "read": """
import random, resource, sys, time
from codeclab.tokens.store import TokenStore
t = time.perf_counter()
store = TokenStore(sys.argv[1], cache_mb=32)
open_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
opened = time.perf_counter() - t
ids = [f"utt{i:07d}" for i in random.Random(0).sample(range(len(store)), 2000)]
t = time.perf_counter()
for item_id in ids:
    assert item_id in store
lookup = (time.perf_counter() - t) / len(ids)
t = time.perf_counter()
for item_id in ids[:200]:
    store[item_id]
read = (time.perf_counter() - t) / 200
print(len(store), opened, lookup * 1e6, read * 1e3, open_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""",
}


def child(kind: str, *args: str) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD[kind], *args], capture_output=True, text=True, check=True
    )
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ranks", default="1,8")
    parser.add_argument("--skip-store", action="store_true", help="measure planning only")
    parser.add_argument("--write-store", type=Path, help=argparse.SUPPRESS)  # the writing child
    args = parser.parse_args()
    if args.write_store:
        write_store(args.write_store, args.rows)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = args.out / f"manifest-{args.rows}.jsonl.gz"
    write_manifest(manifest, args.rows)
    for ranks in (int(r) for r in args.ranks.split(",")):
        items, seconds, rss, base = child("plan", str(manifest), "0", str(ranks))
        print(
            f"plan rank 0 of {ranks}: {int(items):,} items in {seconds:.1f} s, peak RSS {rss:.0f} MiB "
            f"({rss - base:.0f} MiB over the {base:.0f} MiB of the process before planning)"
        )
    if args.skip_store:
        return
    store = args.out / f"store-{args.rows}"
    begin = time.perf_counter()
    # written in a child: a child's peak RSS starts from its parent's at fork, so the parent stays small
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--out",
            str(args.out),
            "--rows",
            str(args.rows),
            "--write-store",
            str(store),
        ],
        check=True,
    )
    print(f"store written in {time.perf_counter() - begin:.0f} s")
    for run in ("first", "again"):
        items, seconds, rss = child("merge", str(store))
        print(f"merge ({run}): {int(items):,} items in {seconds:.1f} s, peak RSS {rss:.0f} MiB")
    items, opened, lookup_us, read_ms, open_rss, rss = child("read", str(store))
    print(
        f"reader: {int(items):,} items, opened in {opened:.2f} s (peak RSS {open_rss:.0f} MiB), lookup "
        f"{lookup_us:.1f} us, store[id] {read_ms:.2f} ms (part reads included; 32 MiB part cache), peak RSS "
        f"after 200 random reads {rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
