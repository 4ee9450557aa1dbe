"""A token store part decoded once, and a cache of decoded parts bounded in bytes.

Random access to a store (`store[id]` in shuffled order, as LM training reads) must not pay a part's
read, checksum and decode per item. A `DecodedPart` holds one part's codes as one flat array with each
row's offset, and its other columns as lists; every check a record needs (codebooks, frames, code range)
is made once, over the whole part, when it is decoded. `PartCache` keeps the most recently used decoded
parts up to a byte budget.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._checks import codes_out_of_range
from codeclab.tokens.store_errors import StoreError

SCALAR_COLUMNS = ("id", "path", "sha256", "start", "end", "duration", "sample_rate", "num_frames", "text")
ROW_OVERHEAD_BYTES = 600  # Python objects of one row's scalar columns, roughly


def record_meta(text: str | None, where: str) -> dict[str, Any]:
    """A record's meta column (a JSON object, or null / absent in older parts) -> dict."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise StoreError(f"{where}: the meta column is not JSON") from None
    if not isinstance(value, dict):
        raise StoreError(f"{where}: the meta column is not a JSON object")
    return value


class DecodedPart:
    """The rows of one part: `row(r)` -> (scalar fields dict, codes [n_q, frames] as a view)."""

    def __init__(self, table, where: Path, n_q: int, codebook_size: int) -> None:
        import pyarrow.compute as pc

        self.where, self.num_rows = where, table.num_rows
        self.columns = {name: table.column(name).to_pylist() for name in SCALAR_COLUMNS}
        self.meta = table.column("meta").to_pylist() if "meta" in table.column_names else None
        codes = table.column("codes").combine_chunks()
        if codes.null_count:
            self._fail(
                int(np.flatnonzero(codes.is_null().to_numpy(zero_copy_only=False))[0]), "no codes (null)"
            )
        per_row = pc.list_value_length(codes).to_numpy(zero_copy_only=False)
        inner = codes.flatten()
        lengths = pc.list_value_length(inner).fill_null(-1).to_numpy(zero_copy_only=False)
        self.values = inner.flatten().to_numpy(zero_copy_only=False)
        frames = np.asarray(self.columns["num_frames"], dtype=np.int64)
        self._check_shapes(per_row, lengths, frames, n_q)
        self._check_range(frames, n_q, codebook_size)
        sizes = n_q * frames
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
        self.n_q = n_q
        self.nbytes = int(self.values.nbytes) + ROW_OVERHEAD_BYTES * self.num_rows

    def _fail(self, row: int, problem: str) -> None:
        raise StoreError(f"{self.where} row {row}: {problem}")

    def _check_shapes(self, per_row: np.ndarray, lengths: np.ndarray, frames: np.ndarray, n_q: int) -> None:
        bad = np.flatnonzero(per_row != n_q)
        if bad.size:
            row = int(bad[0])
            self._fail(row, f"codes of {per_row[row]} codebooks, but the store has {n_q} codebooks")
        wanted = np.repeat(frames, n_q)
        bad = np.flatnonzero(lengths != wanted)
        if bad.size:
            row = int(bad[0]) // n_q
            self._fail(
                row, f"codes of shape ({n_q}, {lengths[bad[0]]}), but the record has {frames[row]} frames"
            )

    def _check_range(self, frames: np.ndarray, n_q: int, codebook_size: int) -> None:
        outside = codes_out_of_range(self.values, codebook_size)
        if outside is None:
            return
        low, high = outside
        bad = int(np.flatnonzero((self.values < 0) | (self.values >= codebook_size))[0])
        row = int(np.searchsorted(np.cumsum(n_q * frames), bad, side="right"))
        self._fail(row, f"codes outside [0, {codebook_size}) (from {low} to {high})")

    def row(self, row: int) -> tuple[dict[str, Any], np.ndarray]:
        if not 0 <= row < self.num_rows:
            raise StoreError(f"{self.where} row {row}: the part has only {self.num_rows} rows")
        fields = {name: values[row] for name, values in self.columns.items()}
        fields["meta"] = record_meta(
            self.meta[row] if self.meta is not None else None, f"{self.where} row {row}"
        )
        frames, start = fields["num_frames"], int(self.starts[row])
        codes = self.values[start : start + self.n_q * frames].reshape(self.n_q, frames)
        return fields, codes


class PartCache:
    """Decoded parts, least recently used first out once their bytes exceed `max_bytes` (the part just
    read always stays)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._parts: OrderedDict[str, DecodedPart] = OrderedDict()
        self.bytes = 0

    def get(self, file: str, load: Callable[[], DecodedPart]) -> DecodedPart:
        part = self._parts.get(file)
        if part is not None:
            self._parts.move_to_end(file)
            return part
        part = load()
        self._parts[file] = part
        self.bytes += part.nbytes
        while self.bytes > self.max_bytes and len(self._parts) > 1:
            _, old = self._parts.popitem(last=False)
            self.bytes -= old.nbytes
        return part

    def __len__(self) -> int:
        return len(self._parts)
