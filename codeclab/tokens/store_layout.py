"""The token store's layout: what a store directory holds, its metadata, its rows, and the checks on them.

Layout:

    STORE/tokens.json                          codec (name, config and weights sha256), rates, n_q, version
    STORE/data/part-SSSSS-of-NNNNN-QQQQQQ.parquet   rows written by shard S of N, flush number Q
    STORE/errors/shard-SSSSS-of-NNNNN.jsonl    files that failed in shard S, one JSON object per line
    STORE/done/shard-SSSSS-of-NNNNN.json       written when shard S finished
    STORE/index.pq                             id -> part file and row, sorted by id (Parquet; written by
                                               merge; not named *.parquet so that no glob of the data
                                               catches it; older stores named it index.parquet,
                                               which is still read)
    STORE/errors.jsonl                         all failures, sorted by id (written by merge)
    STORE/README.md                            dataset card (written by merge): its YAML header tells
                                               Hugging Face `load_dataset(STORE)` the split and features

Part files are written whole to a temporary name and renamed, so a crash never leaves half a shard; a
resumed run skips every id already in a part file or an error log. Rows hold: id, path, sha256 (of the
source file's bytes), start, end, duration (seconds tokenized), sample_rate (of the source), num_frames,
codes ([n_q][frames], int16 when the codebook has at most 32,768 codes, else int32), text and meta (the
input's other columns, e.g. speaker, language, split, as a JSON object; parts written before 0.5 have no
meta column and read as {}). `path` is absolute; audio inside a container reads `CONTAINER::MEMBER`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._files import is_temp_file, read_json_file
from codeclab.tokens.store_errors import StoreError
from codeclab.tokens.store_paths import (
    PART_RE,
    StoreLayout,
)

FORMAT = "codeclab-tokens"


PART_CHECKSUMS = "codeclab.part_sha256"


RECORD_COLUMNS = frozenset(
    ("id", "path", "sha256", "start", "end", "duration", "sample_rate", "num_frames", "codes", "text")
)  # the index's schema metadata: {part file: sha256}


FORMAT_VERSION = 1


PART_ROWS = "codeclab.rows"  # a part's own row count, in its schema metadata (checked against its footer)


PART_COUNTS = "codeclab.code_counts"  # a part's code counts per codebook, sparse: [[[code, count], ...], ...]


COMPATIBLE_FIELDS = (
    "format",
    "bucket_seconds",
    "codec",
    "sample_rate",
    "channels",
    "hop_length",
    "n_q",
    "codebook_size",
    "codes_dtype",
)


PART_STATS = "codeclab.part_stats"  # the index's schema metadata: {part file: [size, mtime_ns]}


def codes_dtype(codebook_size: int) -> str:
    return "int16" if codebook_size <= 32768 else "int32"


def _json_seconds(value: float | None) -> float | str | None:
    """A segment time as JSON allows it: NaN and inf (which JSON lacks) become their text."""
    return value if value is None or math.isfinite(value) else str(value)


@dataclass
class TokenRecord:
    """One item of a store. codes: [n_q, frames] in the store's dtype (`.tensor()` for int64 torch)."""

    id: str
    codes: np.ndarray
    path: str
    sha256: str
    duration: float
    sample_rate: int
    start: float | None = None
    end: float | None = None
    text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # the input's other columns (speaker, split, ...)

    @property
    def num_frames(self) -> int:
        return int(self.codes.shape[1])

    def tensor(self):
        import torch

        return torch.from_numpy(self.codes.astype(np.int64))


def _schema(dtype: str):
    import pyarrow as pa

    code_type = pa.int16() if dtype == "int16" else pa.int32()
    return pa.schema(
        [
            ("id", pa.string()),
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("duration", pa.float64()),
            ("sample_rate", pa.int32()),
            ("num_frames", pa.int32()),
            ("codes", pa.list_(pa.list_(code_type))),
            ("text", pa.string()),
            ("meta", pa.string()),
        ]
    )


def _check_column_types(table, path: Path, names: Iterable[str] = RECORD_COLUMNS) -> None:
    """Raise StoreError naming the part and column when a column's type is not the one stores write
    (a flipped byte in a footer can turn a string column into binary, or a list into a scalar)."""
    allowed = [_schema(dtype) for dtype in ("int16", "int32")]
    for name in sorted(names):
        found = table.schema.field(name).type
        if not any(found == schema.field(name).type for schema in allowed):
            raise StoreError(f"{path}: column {name!r} has type {found}, not the type token stores write")
    recorded = (table.schema.metadata or {}).get(PART_ROWS.encode())
    if recorded is not None and recorded != str(table.num_rows).encode():
        raise StoreError(f"{path}: {table.num_rows} rows, but the part was written with {recorded!r}")


def _read_errors(path: Path) -> list[dict[str, Any]]:
    """Lines of an error log: objects with a string id. A torn last line (from a crash mid-write) is
    ignored; any other line that is not such an object (a flipped bit turned "id" into "iD") is a
    StoreError naming the file and line."""
    rows = []
    if path.is_file():
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                if number == len(lines):
                    continue
                raise StoreError(f"{path} line {number}: not a JSON object") from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise StoreError(
                    f'{path} line {number}: an error record needs a string "id" (got {line[:60]!r})'
                )
            rows.append(row)
    return rows


def part_files(store: Path) -> list[Path]:
    data = StoreLayout(store).data_dir
    return sorted(p for p in data.glob("part-*.parquet") if PART_RE.search(p.name)) if data.is_dir() else []


def read_metadata(store: str | Path) -> dict[str, Any]:
    path = StoreLayout(store).metadata
    if not path.is_file():
        raise StoreError(f"{store}: not a token store (no {path.name})")
    try:
        meta = read_json_file(path)
    except ValueError as err:
        raise StoreError(str(err)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise StoreError(f"{path}: not a codeclab token store (format {found!r})")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise StoreError(f"{path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"{path}: format version {meta['format_version']} is newer than this codeclab reads; upgrade codeclab"
        )
    _check_metadata(meta, path)
    return meta


_META_INTS = {"sample_rate": (1, 768_000), "n_q": (1, 256), "codebook_size": (2, 1 << 24)}


def _check_metadata(meta: dict[str, Any], path: Path) -> None:
    for name, (low, high) in _META_INTS.items():
        value = meta.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise StoreError(f"{path}: {name} must be an integer in [{low}, {high}], got {value!r}")
    rate = meta.get("frame_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1e6:
        raise StoreError(f"{path}: frame_rate must be a positive number, got {rate!r}")
    if meta.get("codes_dtype") not in ("int16", "int32"):
        raise StoreError(f"{path}: codes_dtype must be 'int16' or 'int32', got {meta.get('codes_dtype')!r}")
    codec = meta.get("codec")
    if not isinstance(codec, dict) or not isinstance(codec.get("name"), str):
        raise StoreError(f"{path}: codec must be an object with a 'name' string, got {codec!r}")


STORE_ENTRIES = frozenset(StoreLayout(Path(".")).names())


def check_store_target(store: Path) -> None:
    """Refuse to write a store into a folder that holds other files: a folder without tokens.json must be
    empty, or hold only what a store's first writers make (another shard may have started it)."""
    if not store.exists() or StoreLayout(store).is_store():
        return
    if not store.is_dir():
        raise StoreError(f"{store}: exists and is not a directory; choose another --out")
    foreign = sorted(
        p.name for p in store.iterdir() if p.name not in STORE_ENTRIES and not is_temp_file(p.name)
    )
    if foreign:
        raise StoreError(
            f"{store}: holds files that are not part of a token store (e.g. {foreign[0]!r}); choose a new or "
            "empty --out"
        )


def index_path(store: str | Path) -> Path:
    """The store's index file: `index.pq`, or an older store's `index.parquet` when only that exists."""
    return StoreLayout(store).index


def index_is_fresh(store: str | Path) -> bool:
    """True when the index covers exactly the store's part files (a merge that finished and no
    part written since). Indexes that record part checksums compare the set of parts, so a part changed
    after the merge is caught by its checksum instead of making the index look stale; older indexes
    compare modification times."""
    import pyarrow.parquet as pq

    store = Path(store)
    index = index_path(store)
    if not index.is_file():
        return False
    parts = part_files(store)
    try:
        stored = (pq.read_schema(index).metadata or {}).get(PART_CHECKSUMS.encode())
    except Exception:  # an unreadable index is not fresh: the reader scans the parts  # noqa: BLE001
        return False
    if stored is not None:
        try:
            return set(json.loads(stored)) == {f"data/{p.name}" for p in parts}
        except json.JSONDecodeError:
            return False
    return index.stat().st_mtime >= max((p.stat().st_mtime for p in parts), default=0)


def recorded_parts(store: str | Path) -> dict[str, str] | None:
    """The part checksums (file -> sha256) an index recorded, or None without an index that has them."""
    import pyarrow.parquet as pq

    index = index_path(Path(store))
    if not index.is_file():
        return None
    try:
        stored = (pq.read_schema(index).metadata or {}).get(PART_CHECKSUMS.encode())
        return json.loads(stored) if stored is not None else None
    except Exception:  # an unreadable index is judged by its readers  # noqa: BLE001
        return None


def check_parts_present(store: str | Path) -> None:
    """Raise StoreError naming a part that the index lists but that is not on disk. codeclab never
    deletes a part, so a missing one is damage (a failed copy), never staleness: reading or merging
    the rest would serve fewer items without a word."""
    recorded = recorded_parts(store) or {}
    missing = sorted(name for name in recorded if not (Path(store) / name).is_file())
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise StoreError(
            f"{Path(store) / missing[0]}: this part of the store is missing{more}, though the index lists "
            "it; restore it from where the store was copied (its items would be lost otherwise)"
        )


def shard_status(store: str | Path) -> tuple[int, set[int]]:
    """(number of shards, the shards marked done) from the store's done markers; (0, set()) if none.
    A store resumed with another shard count (finished items are known per item, so a run may be
    resharded) has markers of several counts: the count of the most recent marker is the run's."""
    done_dir = StoreLayout(store).done_dir
    by_count: dict[int, set[int]] = {}
    newest: dict[int, float] = {}
    for marker in done_dir.glob("shard-*-of-*.json") if done_dir.is_dir() else []:
        match = re.fullmatch(r"shard-(\d{5})-of-(\d{5})\.json", marker.name)
        if match:
            count = int(match.group(2))
            by_count.setdefault(count, set()).add(int(match.group(1)))
            newest[count] = max(newest.get(count, 0.0), marker.stat().st_mtime)
    if not by_count:
        return 0, set()
    count = max(by_count, key=lambda c: newest[c])
    return count, by_count[count]


def read_part(path: Path, columns: list[str] | None = None, dictionary: list[str] | None = None):
    """A Parquet file of a store (a part or the index) as a pyarrow Table, its page checksums verified and
    the record columns' types checked; `dictionary`: columns read dictionary-encoded, as stored. Any
    failure raises StoreError naming the file. The one way a store's Parquet files are read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(
            path,
            columns=columns,
            page_checksum_verification=True,
            read_dictionary=dictionary,
            use_threads=False,  # one thread: the decode buffers of many threads add to a reader's peak
        )
        table.column_names  # noqa: B018  (a corrupt footer can fail only when its names are decoded)
        _check_column_types(table, path, [c for c in table.column_names if c in RECORD_COLUMNS])
        return table
    except StoreError:
        raise
    except (OSError, pa.ArrowException, ValueError, KeyError) as err:
        raise StoreError(f"{path}: cannot read this part of the store ({err})") from None


def part_schema(path: Path):
    """The schema of a store's Parquet file (footer only); StoreError naming the file when unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise StoreError(f"{path}: cannot read this part of the store ({err})") from None


def part_columns(part: Path, columns: list[str]) -> dict[str, list]:
    """Columns of one part file as Python lists (`read_part`)."""
    table = read_part(part, columns)
    return {name: table.column(name).to_pylist() for name in columns}


def shards_done(store: str | Path, num_shards: int) -> bool:
    layout = StoreLayout(store)
    return all(layout.done_marker(i, num_shards).is_file() for i in range(num_shards))
