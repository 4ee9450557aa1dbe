"""Reading a store: `TokenStore`, checked part by part (sha256, shapes, code range), parts decoded once
and cached by bytes, the index held as Arrow arrays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeclab._files import sha256_file
from codeclab.tokens.part_cache import DecodedPart, PartCache, record_meta
from codeclab.tokens.store_errors import StoreError
from codeclab.tokens.store_index import StoreIndex
from codeclab.tokens.store_layout import (
    PART_CHECKSUMS,
    RECORD_COLUMNS,
    StoreLayout,
    TokenRecord,
    _check_column_types,
    _read_errors,
    check_parts_present,
    index_is_fresh,
    index_path,
    part_columns,
    part_files,
    part_schema,
    read_metadata,
    read_part,
)


class TokenStore:
    """Read a token store.

    store = TokenStore("tokens/")
    len(store); store.metadata; store.ids(); store["spk1/utt001.flac"].codes  # [n_q, frames]
    for record in store: ...   # file by file (fast); sorted(store.ids()) for a fixed order
    for record in store.shuffled(seed=0): ...  # every item once, in a random order, memory bounded

    Parts are decoded once (checksum, codes range and shapes checked once per part) and kept in a cache
    of `cache_mb` MiB, so random access is as fast as sequential while the decoded store fits in it;
    `shuffled()` reads stores of any size with a few parts in memory.
    """

    def __init__(self, path: str | Path, cache_mb: float = 512.0, cache_files: int | None = None) -> None:
        """`cache_files` is accepted for older callers and ignored: the cache is bounded in bytes."""
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        self._cache = PartCache(int(cache_mb * (1 << 20)))
        self._checksums: dict[str, str] = {}  # part file -> sha256 recorded by merge (verified on first read)
        self._index = self._load_index()

    def _read(self, path: Path, columns: list[str] | None = None, dictionary: list[str] | None = None):
        """A Parquet table of this store (`store_layout.read_part`)."""
        return read_part(path, columns, dictionary)

    def _load_index(self) -> StoreIndex:
        index_file = index_path(self.path)
        check_parts_present(self.path)
        parts = part_files(self.path)
        if index_is_fresh(self.path):
            table = self._read(index_file, ["id", "file", "row"], dictionary=["file"])
            stored = (table.schema.metadata or {}).get(PART_CHECKSUMS.encode())
            if stored is not None:
                try:
                    self._checksums = json.loads(stored)
                except json.JSONDecodeError:
                    raise StoreError(f"{index_file}: the part checksums are corrupt") from None
            try:
                index = StoreIndex(table.column("id"), table.column("file"), table.column("row"))
            except (TypeError, ValueError) as err:
                raise StoreError(f"{index_file}: malformed index ({err})") from None
            allowed = set(self._checksums) or {f"data/{p.name}" for p in parts}
            stray = next((f for f in index.files() if f not in allowed), None)
            if stray is not None:  # an index row outside the store's own checked parts
                raise StoreError(
                    f"{index_file}: the index points at {stray!r}, which is not a part of this store"
                )
            return index
        pairs: dict[str, tuple[str, int]] = {}  # no (fresh) index: scan the parts, as merge would
        for part in parts:
            for row, item_id in enumerate(part_columns(part, ["id"])["id"]):
                pairs.setdefault(item_id, (f"data/{part.name}", row))
        return StoreIndex.from_pairs(pairs)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def ids(self) -> list[str]:
        return self._index.keys()

    @property
    def n_q(self) -> int:
        return int(self.metadata["n_q"])

    @property
    def codebook_size(self) -> int:
        return int(self.metadata["codebook_size"])

    @property
    def frame_rate(self) -> float:
        return float(self.metadata["frame_rate"])

    def _part(self, file: str) -> DecodedPart:
        """The decoded part `file` (checked against the index's sha256 when it is first decoded)."""
        return self._cache.get(file, lambda: self._decode(file))

    def _decode(self, file: str) -> DecodedPart:
        path = self.path / file
        expected = self._checksums.get(file)
        if expected is not None:
            try:
                actual = sha256_file(path)
            except OSError as err:
                raise StoreError(f"{path}: cannot read this part of the store ({err.strerror})") from None
            if actual != expected:
                raise StoreError(
                    f"{path}: sha256 {actual[:16]}... differs from the {expected[:16]}... the index recorded: "
                    "the part is corrupt or was replaced"
                )
        table = self._read(path)
        missing = RECORD_COLUMNS - set(table.column_names)
        if missing:
            raise StoreError(f"{path}: not a part of a token store (no column {sorted(missing)[0]!r})")
        _check_column_types(table, path, RECORD_COLUMNS | ({"meta"} & set(table.column_names)))
        try:
            return DecodedPart(table, path, self.n_q, self.codebook_size)
        except StoreError:
            raise
        except (KeyError, ValueError, TypeError) as err:
            raise StoreError(f"{path}: malformed part ({err})") from None

    def _record(self, part: DecodedPart, row: int, item_id: str) -> TokenRecord:
        data, codes = part.row(row)
        if data["id"] != item_id:
            raise StoreError(
                f"{part.where} row {row}: holds {data['id']!r}, but the index points {item_id!r} there: "
                "the index is stale or corrupt (rebuild it with `codeclab tokenize --merge --out STORE`)"
            )
        data.pop("num_frames")  # a property of the codes (checked against them when the part was decoded)
        return TokenRecord(codes=codes.copy(), **data)

    def __getitem__(self, item_id: str) -> TokenRecord:
        if item_id not in self._index:
            raise KeyError(f"{item_id!r} is not in {self.path}")
        file, row = self._index[item_id]
        return self._record(self._part(file), row, item_id)

    def rows_by_part(self) -> dict[str, list[tuple[int, str]]]:
        """part file -> its (row, id) pairs in row order."""
        return self._index.rows_by_part()

    def __iter__(self) -> Iterator[TokenRecord]:
        for file, rows in self.rows_by_part().items():
            part = self._part(file)
            for row, item_id in rows:
                yield self._record(part, row, item_id)

    def shuffled_ids(self, seed: int = 0, window: int = 4) -> list[str]:
        """Every id once, in a seeded random order that stays within `window` parts at a time: the parts
        are shuffled, then the items of each run of `window` consecutive parts (WebDataset's shard shuffle
        plus a buffer). Reading in this order keeps at most `window` parts decoded."""
        import random

        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        rng = random.Random(seed)
        parts = list(self.rows_by_part().values())
        rng.shuffle(parts)
        order: list[str] = []
        for start in range(0, len(parts), window):
            block = [item_id for rows in parts[start : start + window] for _, item_id in rows]
            rng.shuffle(block)
            order.extend(block)
        return order

    def shuffled(self, seed: int = 0, window: int = 4) -> Iterator[TokenRecord]:
        """The records in `shuffled_ids(seed, window)` order, each checked as `store[id]` checks it."""
        for item_id in self.shuffled_ids(seed, window):
            yield self[item_id]

    def item_meta(self) -> dict[str, dict[str, Any]]:
        """id -> the item's metadata (speaker, split, ...), reading the meta column only."""
        found: dict[str, dict[str, Any]] = {}
        for file, rows in self.rows_by_part().items():
            path = self.path / file
            if "meta" not in part_schema(path).names:
                continue  # a part written before the meta column
            column = self._read(path, ["meta"]).column("meta").to_pylist()
            for row, item_id in rows:
                if not 0 <= row < len(column):
                    raise StoreError(f"{path} row {row}: the part has only {len(column)} rows")
                found[item_id] = record_meta(column[row], f"{path} row {row}")
        return found

    def errors(self) -> list[dict[str, Any]]:
        """Failed items (from errors.jsonl, or the shard logs before a merge)."""
        layout = StoreLayout(self.path)
        if layout.errors.is_file() and layout.index.is_file():
            return _read_errors(layout.errors)
        rows: dict[str, dict[str, Any]] = {}
        for log in layout.error_logs():
            for row in _read_errors(log):
                if row.get("id") not in self._index:
                    rows[row["id"]] = row
        return [rows[k] for k in sorted(rows)]

    def total_duration(self) -> float:
        """Seconds of audio tokenized, from the duration column (codes are not read)."""
        total = 0.0
        for file, rows in self.rows_by_part().items():
            wanted = {row for row, _ in rows}
            durations = self._read(self.path / file, ["duration"]).column("duration").to_pylist()
            total += sum(d for row, d in enumerate(durations) if row in wanted)
        return total
