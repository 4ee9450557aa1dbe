"""Merging a store: the index (id -> part and row), the merged error log, the statistics and the card,
incrementally: parts unchanged since the last merge are neither read nor hashed again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._files import atomic_write, atomic_write_json, atomic_write_text, is_temp_file, sha256_file
from codeclab.tokens.store_card import dataset_card
from codeclab.tokens.store_layout import (
    PART_CHECKSUMS,
    PART_STATS,
    StoreLayout,
    _read_errors,
    check_parts_present,
    part_columns,
    part_files,
    part_schema,
    read_metadata,
    read_part,
)
from codeclab.tokens.store_stats import _part_counts, code_statistics

STALE_TEMP_SECONDS = 3600.0  # a merge's temporary file older than this was left by a killed merge


def _sweep_merge_leftovers(store: Path) -> None:
    """Remove the temporary files (index, errors, stats, card) of merges killed mid-write: those older
    than STALE_TEMP_SECONDS (a merge running now, in another process, writes fresh ones)."""
    now = time.time()
    layout = StoreLayout(store)
    for name in (layout.index_to_write.name, layout.errors.name, layout.stats.name, layout.card.name):
        for stale in store.glob(f".{name}.*"):
            try:
                old = now - stale.stat().st_mtime > STALE_TEMP_SECONDS
            except OSError:
                continue
            if is_temp_file(stale.name) and old:
                stale.unlink(missing_ok=True)


def _previous_index(store: Path):
    """({file: its index rows}, {file: sha256}, {file: [size, mtime_ns]}) of the store's last merge, or
    None when there is none that recorded part stats (then every part is read and hashed). The rows are
    grouped by part once, not filtered again for every part."""
    import pyarrow as pa
    import pyarrow.compute as pc

    index = StoreLayout(store).index_to_write
    if not index.is_file():
        return None
    try:
        table = read_part(index)
        metadata = table.schema.metadata or {}
        checksums = json.loads(metadata[PART_CHECKSUMS.encode()])
        stats = json.loads(metadata[PART_STATS.encode()])
    except Exception:  # an older or unreadable index: the merge starts over  # noqa: BLE001
        return None
    if not isinstance(checksums, dict) or not isinstance(stats, dict):
        return None
    table = table.select(["id", "file", "row", "num_frames", "duration"]).combine_chunks()
    encoded = pc.dictionary_encode(table.column("file")).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
    by_file = {
        name: table.take(pa.array(order[bounds[code] : bounds[code + 1]]))
        for code, name in enumerate(encoded.dictionary.to_pylist())
    }
    return by_file, checksums, stats


def _part_rows(part: Path, name: str, previous, stat_key: list[int]):
    """The index rows of one part (id, file, row, num_frames, duration) and its sha256: from the last
    merge's index when the part is unchanged since (same size and mtime), else read and hashed."""
    import pyarrow as pa

    if previous is not None:
        by_file, checksums, stats = previous
        if stats.get(name) == stat_key and name in checksums and name in by_file:
            return by_file[name], checksums[name]
    columns = part_columns(part, ["id", "num_frames", "duration"])
    count = len(columns["id"])
    rows = pa.table(
        {
            "id": pa.array(columns["id"], pa.string()),
            "file": pa.array([name] * count, pa.string()),
            "row": pa.array(np.arange(count, dtype=np.int32)),
            "num_frames": pa.array(columns["num_frames"], pa.int32()),
            "duration": pa.array(columns["duration"], pa.float64()),
        }
    )
    return rows, sha256_file(part)


def merge(store: str | Path) -> dict[str, int]:
    """Write index.pq (id -> part file and row, sorted by id), errors.jsonl (sorted by id), stats.json
    and the dataset card README.md.

    An id present in several parts keeps its first part (by file name); failures of ids that were
    tokenized later (a retry) are dropped. Incremental: a part unchanged since the last merge (the
    index records each part's size and mtime beside its sha256) is neither read nor hashed again; the
    rows are joined and deduplicated as Arrow arrays, not Python objects. Returns counts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    store = Path(store)
    meta = read_metadata(store)
    check_parts_present(store)
    _sweep_merge_leftovers(store)
    n_q, k = int(meta["n_q"]), int(meta["codebook_size"])
    previous = _previous_index(store)
    parts = part_files(store)  # listed once: a part written during the merge has neither rows nor checksum
    tables, checksums, part_stats = [], {}, {}
    for part in parts:
        name, info = f"data/{part.name}", part.stat()
        part_stats[name] = [info.st_size, info.st_mtime_ns]
        rows, checksums[name] = _part_rows(part, name, previous, part_stats[name])
        tables.append(rows)
    empty = pa.table(
        {
            "id": pa.array([], pa.string()),
            "file": pa.array([], pa.string()),
            "row": pa.array([], pa.int32()),
            "num_frames": pa.array([], pa.int32()),
            "duration": pa.array([], pa.float64()),
        }
    )
    joined = pa.concat_tables(tables) if tables else empty
    order = pc.sort_indices(joined, sort_keys=[("id", "ascending")]).to_numpy()  # stable: part order kept
    ids_sorted = joined.column("id").take(pa.array(order)).combine_chunks()
    first = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        first[1:] = pc.not_equal(ids_sorted.slice(1), ids_sorted.slice(0, len(order) - 1)).to_numpy(
            zero_copy_only=False
        )
    kept = order[first]
    index = joined.take(pa.array(kept)).replace_schema_metadata(
        {
            PART_CHECKSUMS: json.dumps(checksums, sort_keys=True),
            PART_STATS: json.dumps(part_stats, sort_keys=True),
        }
    )
    duplicates = len(order) - len(kept)
    counts = _code_counts_of(parts, index, n_q, k)
    errors: dict[str, dict[str, Any]] = {}
    layout = StoreLayout(store)
    logged = [row for log in layout.error_logs() for row in _read_errors(log)]
    if logged:
        done = pc.is_in(pa.array([row["id"] for row in logged], pa.string()), value_set=index.column("id"))
        for row, tokenized in zip(logged, done.to_pylist()):
            if not tokenized:
                errors[row["id"]] = row
    lines = "".join(json.dumps(errors[key], ensure_ascii=False) + "\n" for key in sorted(errors))
    atomic_write_text(layout.errors, lines)
    stats = {"items": index.num_rows, **code_statistics(counts, float(meta["frame_rate"]))}
    atomic_write_json(layout.stats, stats, indent=1)
    with_meta = all("meta" in part_schema(part).names for part in parts)
    atomic_write_text(layout.card, dataset_card(meta, index.num_rows, with_meta))
    # the index last: its presence (covering every part) is what marks the merge finished
    atomic_write(layout.index_to_write, lambda tmp: pq.write_table(index, tmp, write_page_checksum=True))
    layout.legacy_index.unlink(missing_ok=True)  # an older store's index, now replaced
    return {"items": index.num_rows, "errors": len(errors), "duplicates": duplicates}


def _code_counts_of(parts: list[Path], index, n_q: int, k: int) -> np.ndarray:
    """Code counts per codebook over the rows the index keeps ([n_q, k]): a part whose rows are all kept
    gives its recorded counts (its footer), others count their kept rows' codes."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    encoded = pc.dictionary_encode(index.column("file")).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    names = {name: code for code, name in enumerate(encoded.dictionary.to_pylist())}
    rows = index.column("row").to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    counts = np.zeros((n_q, k), dtype=np.int64)
    for part in parts:
        code = names.get(f"data/{part.name}")
        kept = [] if code is None else sorted(rows[order[bounds[code] : bounds[code + 1]]].tolist())
        total = pq.ParquetFile(part).metadata.num_rows
        counts += _part_counts(part, kept, total, n_q, k)
    return counts
