"""A store's index in memory without a Python object per item: id -> (part file, row).

The ids stay one sorted Arrow string array (looked up by binary search), the part files a small list
with one int32 code per item, the rows an int32 array: about 30 bytes per item (a dict of tuples took
about 250), so a reader of a 1 M-item store holds some 30 MB of index.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class StoreIndex:
    """A read-only mapping id -> (file, row), built from parallel arrays (any order; sorted here)."""

    def __init__(self, ids, files, rows) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = pa.array(ids, pa.string()) if not isinstance(ids, pa.Array | pa.ChunkedArray) else ids
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        files = pa.array(files, pa.string()) if not isinstance(files, pa.Array | pa.ChunkedArray) else files
        if pa.types.is_dictionary(files.type):  # read as stored: no string per row is made
            encoded = files.combine_chunks() if isinstance(files, pa.ChunkedArray) else files
            encoded = (
                encoded.cast(pa.dictionary(pa.int32(), pa.string()))
                if isinstance(encoded, pa.ChunkedArray)
                else encoded
            )
        else:
            encoded = pc.dictionary_encode(files)
        encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        rows = np.asarray(
            rows.to_numpy(zero_copy_only=False) if hasattr(rows, "to_numpy") else rows, np.int64
        )
        if len(ids) > 1 and not pc.all(pc.less(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py():
            order = pc.sort_indices(ids).to_numpy()  # not strictly increasing: sort (and keep duplicates)
            ids, codes, rows = ids.take(pa.array(order)), codes[order], rows[order]
        self._ids = ids
        self._files: list[str] = encoded.dictionary.to_pylist()
        self._codes = codes
        self._rows = rows.astype(np.int64)

    @classmethod
    def from_pairs(cls, pairs: dict[str, tuple[str, int]]) -> StoreIndex:
        ids = list(pairs)
        return cls(ids, [pairs[i][0] for i in ids], np.array([pairs[i][1] for i in ids], dtype=np.int64))

    def _find(self, item_id: str) -> int:
        if not isinstance(item_id, str):
            return -1
        low, high = 0, len(self._ids)
        while low < high:
            mid = (low + high) // 2
            if self._ids[mid].as_py() < item_id:
                low = mid + 1
            else:
                high = mid
        return low if low < len(self._ids) and self._ids[low].as_py() == item_id else -1

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return self._find(item_id) >= 0  # type: ignore[arg-type]

    def __getitem__(self, item_id: str) -> tuple[str, int]:
        position = self._find(item_id)
        if position < 0:
            raise KeyError(item_id)
        return self._files[self._codes[position]], int(self._rows[position])

    def get(self, item_id: str, default=None):
        position = self._find(item_id)
        return default if position < 0 else (self._files[self._codes[position]], int(self._rows[position]))

    def keys(self) -> list[str]:
        """Every id, sorted."""
        return self._ids.to_pylist()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def values(self) -> Iterator[tuple[str, int]]:
        for code, row in zip(self._codes.tolist(), self._rows.tolist()):
            yield self._files[code], row

    def items(self) -> Iterator[tuple[str, tuple[str, int]]]:
        yield from zip(self._ids.to_pylist(), self.values())

    def files(self) -> list[str]:
        """The part files the index points into."""
        used = np.unique(self._codes)
        return [self._files[c] for c in used.tolist()]

    def rows_by_part(self) -> dict[str, list[tuple[int, str]]]:
        """part file -> its (row, id) pairs in row order."""
        ids = self._ids.to_pylist()
        order = np.lexsort((self._rows, self._codes))
        out: dict[str, list[tuple[int, str]]] = {}
        for position in order.tolist():
            out.setdefault(self._files[self._codes[position]], []).append(
                (int(self._rows[position]), ids[position])
            )
        return {file: out[file] for file in sorted(out)}
