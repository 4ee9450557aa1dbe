"""Writing a store: one shard's rows in atomic Parquet parts and its failures in an append-only log, and
what a resumed run finds finished."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._checks import codes_out_of_range
from codeclab._files import atomic_write, atomic_write_json, atomic_write_text, is_temp_file
from codeclab.tokens.store_errors import StoreError
from codeclab.tokens.store_layout import (
    COMPATIBLE_FIELDS,
    FORMAT,
    FORMAT_VERSION,
    PART_COUNTS,
    PART_RE,
    PART_ROWS,
    StoreLayout,
    TokenRecord,
    _json_seconds,
    _read_errors,
    _schema,
    check_store_target,
    part_columns,
    part_files,
    read_metadata,
)
from codeclab.tokens.store_stats import code_counts, sparse_counts


class ShardWriter:
    """Writes one shard of a store: rows in atomic Parquet parts, failures in an append-only log."""

    def __init__(
        self, store: str | Path, metadata: dict[str, Any], shard: int = 0, num_shards: int = 1
    ) -> None:
        if not 0 <= shard < num_shards:
            raise StoreError(f"shard {shard} is outside 0..{num_shards - 1}")
        self.store = Path(store)
        self.layout = StoreLayout(self.store)
        self.shard, self.num_shards = shard, num_shards
        self.metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
        self.dtype = self.metadata["codes_dtype"]
        check_store_target(self.store)
        for sub in (
            self.layout.data_dir,
            self.layout.errors_dir,
            self.layout.done_dir,
            self.layout.locks_dir,
        ):
            sub.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_shard(self.store, shard, num_shards)
        # temporary files of this shard left by a killed run (no other run writes them: we hold its lock)
        for stale in self.layout.leftovers(shard, num_shards):
            if is_temp_file(stale.name):
                stale.unlink(missing_ok=True)
        self._check_or_write_metadata()
        self.errors_path = self.layout.error_log(shard, num_shards)
        self._rows: list[dict[str, Any]] = []
        self._seq = 1 + max(
            (
                int(m.group(3))
                for p in part_files(self.store)
                if (m := PART_RE.search(p.name))
                and int(m.group(1)) == shard
                and int(m.group(2)) == num_shards
            ),
            default=-1,
        )
        self.last_flush = time.monotonic()

    def _check_or_write_metadata(self) -> None:
        path = self.layout.metadata
        if path.is_file():
            existing = read_metadata(self.store)
            for key in COMPATIBLE_FIELDS:
                if existing.get(key) != self.metadata.get(key):
                    raise StoreError(
                        f"{self.store}: holds tokens made with {key}={existing.get(key)!r}; this run has "
                        f"{key}={self.metadata.get(key)!r}. Use a new --out or the same settings."
                    )
            for key in ("config_sha256", "weights_sha256"):
                old, new = existing["codec"].get(key), self.metadata["codec"].get(key)
                if old != new:
                    raise StoreError(
                        f"{self.store}: codec {key} differs ({old} in the store, {new} now); use a new --out"
                    )
            return
        atomic_write_text(
            path,
            json.dumps({**self.metadata, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2) + "\n",
        )

    def add(self, record: TokenRecord) -> None:
        """Buffer one record; codes must be [n_q, frames] of the store's n_q, within its codebook."""
        codes, n_q, k = np.asarray(record.codes), self.metadata["n_q"], self.metadata["codebook_size"]
        if codes.ndim != 2 or codes.shape[0] != n_q:
            raise StoreError(f"{record.id}: codes of shape {codes.shape}; this store holds [{n_q}, frames]")
        if codes_out_of_range(codes, k) is not None:
            raise StoreError(f"{record.id}: codes outside [0, {k})")
        self._rows.append(
            {
                "id": record.id,
                "path": record.path,
                "sha256": record.sha256,
                "start": record.start,
                "end": record.end,
                "duration": float(record.duration),
                "sample_rate": int(record.sample_rate),
                "num_frames": record.num_frames,
                "codes": record.codes.astype(self.dtype),
                "text": record.text,
                "meta": json.dumps(record.meta, ensure_ascii=False, sort_keys=True) if record.meta else None,
            }
        )

    @property
    def buffered(self) -> int:
        return len(self._rows)

    def add_error(
        self, item_id: str, path: str, reason: str, start: float | None = None, end: float | None = None
    ) -> None:
        start, end = (_json_seconds(t) for t in (start, end))
        line = json.dumps(
            {"id": item_id, "path": path, "start": start, "end": end, "reason": reason, "shard": self.shard},
            ensure_ascii=False,
            allow_nan=False,
        )
        with open(self.errors_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def flush(self) -> Path | None:
        """Write buffered rows as one part file (atomically); returns its path, or None if empty."""
        self.last_flush = time.monotonic()
        if not self._rows:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = sorted(self._rows, key=lambda r: r["id"])
        columns = {name: [r[name] for r in rows] for name in _schema(self.dtype).names}
        columns["codes"] = [r["codes"].tolist() for r in rows]
        counts = code_counts([r["codes"] for r in rows], self.metadata["n_q"], self.metadata["codebook_size"])
        schema = _schema(self.dtype).with_metadata(
            {PART_ROWS: str(len(rows)), PART_COUNTS: json.dumps(sparse_counts(counts), separators=(",", ":"))}
        )
        table = pa.table(columns, schema=schema)
        path = self.layout.part(self.shard, self.num_shards, self._seq)
        atomic_write(
            path, lambda tmp: pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        )
        self._seq += 1
        self._rows.clear()
        return path

    def finish(self, summary: dict[str, Any]) -> None:
        """Flush, mark this shard done and release its lock."""
        self.flush()
        done = self.layout.done_marker(self.shard, self.num_shards)
        atomic_write_json(done, summary)
        self.close()

    def close(self) -> None:
        """Release the shard's lock (rows not flushed are dropped: a resumed run redoes them)."""
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lock_shard(store: Path, shard: int, num_shards: int):
    """An exclusive lock on one shard of a store, so two runs never write the same part names."""
    import fcntl

    path = StoreLayout(store).lock(shard, num_shards)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreError(
            f"{store}: shard {shard}/{num_shards} is being written by another run; wait for it to finish "
            "or choose another --out"
        ) from None
    return handle


def finished_ids(store: str | Path) -> tuple[set[str], set[str]]:
    """(ids with codes in any part file, ids in any error log) of a store (empty sets for a new one)."""
    store = Path(store)
    done: set[str] = set()
    if part_files(store):
        for part in part_files(store):
            done.update(part_columns(part, ["id"])["id"])
    failed: set[str] = set()
    for log in StoreLayout(store).error_logs():
        failed.update(row["id"] for row in _read_errors(log) if "id" in row)
    return done, failed - done


def finished_sources(
    store: str | Path, ids: set[str]
) -> dict[str, tuple[str, str, float | None, float | None]]:
    """For the finished ids among `ids`: id -> (path, sha256, start, end) recorded with its codes (the
    first part that holds it, as the merge keeps)."""
    found: dict[str, tuple[str, str, float | None, float | None]] = {}
    for part in part_files(Path(store)):
        columns = part_columns(part, ["id", "path", "sha256", "start", "end"])
        for item_id, path, sha, start, end in zip(
            columns["id"], columns["path"], columns["sha256"], columns["start"], columns["end"]
        ):
            if item_id in ids and item_id not in found:
                found[item_id] = (path, sha, start, end)
    return found
