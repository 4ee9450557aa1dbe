"""Audio that sits inside a container: a tar member (WebDataset, lhotse Shar) or a row of a Hugging Face
dataset (saved to disk or as Parquet). An item with a `Member` is read by `read_member_bytes`; plain
files are read from their path.

Tar members are located once, when the inputs are listed (the standard library's `tarfile` reads the
headers and records where each member's bytes start), so a decode worker reads one member with one seek,
whatever the shard's size. Compressed tars (.tar.gz) have no such offsets and are refused.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


class MemberError(ValueError):
    """An item's audio cannot be read from its container; the message names the container and member."""


@dataclass(frozen=True)
class Member:
    """Where an item's bytes sit inside the container at the item's `path`.

    kind "tar": `name` is the member's name, `offset` the byte offset of its data, `size` its length.
    kind "hf" (a `save_to_disk` directory) and "parquet": `offset` is the row, `name` the audio column.
    kind "refused": the input names audio codeclab cannot read; `name` says why (the run lists the item
    in its error log with that reason, so nothing is dropped without a word)."""

    kind: str
    name: str
    offset: int = 0
    size: int = 0

    def describe(self) -> str:
        if self.kind in ("hf", "parquet"):
            return f"row {self.offset} column {self.name}"
        return self.name if self.kind == "tar" else "(refused)"


@dataclass(frozen=True)
class TarEntry:
    name: str
    offset: int
    size: int


def tar_entries(path: str | Path) -> list[TarEntry]:
    """The regular-file members of an uncompressed tar, with their data offsets (headers only are read)."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return [TarEntry(m.name, m.offset_data, m.size) for m in tar if m.isfile()]
    except tarfile.ReadError as err:
        raise MemberError(
            f"{path}: not an uncompressed tar ({err}); give plain .tar shards (a compressed tar has no "
            "random access: decompress it once with `gunzip` or `zstd -d`)"
        ) from None
    except OSError as err:
        raise MemberError(f"{path}: cannot read the tar ({err.strerror or err})") from None


def read_member_bytes(path: str, member: Member) -> bytes:
    """The bytes of one member of the container at `path`; MemberError names both on failure."""
    if member.kind == "refused":
        raise MemberError(member.name)
    try:
        if member.kind == "tar":
            with open(path, "rb") as fh:
                fh.seek(member.offset)
                data = fh.read(member.size)
            if len(data) != member.size:
                raise MemberError(
                    f"{path}: member {member.name} is cut short ({len(data)} of {member.size} bytes)"
                )
            return data
        if member.kind == "hf":
            return _audio_cell_bytes(_hf_row(path, member.name, member.offset), path, member)
        if member.kind == "parquet":
            return _audio_cell_bytes(_parquet_row(path, member.name, member.offset), path, member)
    except OSError as err:
        raise MemberError(f"{path}: cannot read {member.describe()} ({err.strerror or err})") from None
    raise MemberError(f"{path}: unknown container kind {member.kind!r}")


def _audio_cell_bytes(cell: Any, path: str, member: Member) -> bytes:
    """An `Audio` cell ({"bytes", "path"}) -> bytes: its own bytes, else the file it names (relative paths
    are taken relative to the dataset's directory)."""
    if not isinstance(cell, dict):
        raise MemberError(f"{path}: {member.describe()} is not an Audio value (got {type(cell).__name__})")
    if cell.get("bytes"):
        return bytes(cell["bytes"])
    named = cell.get("path")
    if not named:
        raise MemberError(f"{path}: {member.describe()} holds neither bytes nor a path")
    file = Path(named)
    if not file.is_absolute():
        base = Path(path) if Path(path).is_dir() else Path(path).parent
        file = base / file
    return file.read_bytes()


@lru_cache(maxsize=8)
def _hf_dataset(path: str, column: str):
    """A `save_to_disk` dataset (memory-mapped) with its audio column left undecoded; one per process."""
    import datasets

    dataset = datasets.load_from_disk(path)
    if isinstance(dataset, datasets.DatasetDict):
        raise MemberError(f"{path}: a DatasetDict; give one split's directory (e.g. {path}/train)")
    return dataset.cast_column(column, datasets.Audio(decode=False))


def _hf_row(path: str, column: str, row: int) -> Any:
    return _hf_dataset(path, column)[row][column]


@lru_cache(maxsize=8)
def _parquet_groups(path: str) -> tuple[Any, list[int]]:
    """An open Parquet file and the first row of each row group."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    starts, total = [], 0
    for group in range(file.num_row_groups):
        starts.append(total)
        total += file.metadata.row_group(group).num_rows
    return file, starts


@lru_cache(maxsize=2)
def _parquet_group(path: str, column: str, group: int) -> list[Any]:
    file, _ = _parquet_groups(path)
    return file.read_row_group(group, columns=[column]).column(column).to_pylist()


def _parquet_row(path: str, column: str, row: int) -> Any:
    import bisect

    _, starts = _parquet_groups(path)
    group = bisect.bisect_right(starts, row) - 1
    return _parquet_group(path, column, group)[row - starts[group]]
