"""The token store: a directory of Parquet shards holding a corpus's codes.

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
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._files import atomic_write, atomic_write_text, is_temp_file, read_json_file, sha256_file
from codeclab.tokens.part_cache import DecodedPart, PartCache, record_meta
from codeclab.tokens.store_errors import StoreError
from codeclab.tokens.store_index import StoreIndex

FORMAT = "codeclab-tokens"
PART_CHECKSUMS = "codeclab.part_sha256"
RECORD_COLUMNS = frozenset(
    ("id", "path", "sha256", "start", "end", "duration", "sample_rate", "num_frames", "codes", "text")
)  # the index's schema metadata: {part file: sha256}
FORMAT_VERSION = 1
PART_ROWS = "codeclab.rows"  # a part's own row count, in its schema metadata (checked against its footer)
PART_COUNTS = "codeclab.code_counts"  # a part's code counts per codebook, sparse: [[[code, count], ...], ...]
STATS_FILE = "stats.json"  # written by merge: code statistics per codebook (entropy, usage)
INDEX_FILE = "index.pq"
LEGACY_INDEX_FILE = "index.parquet"  # what older stores call their index (still read)
CARD_FILE = "README.md"
PART_RE = re.compile(r"part-(\d{5})-of-(\d{5})-(\d{6})\.parquet$")
# tokens.json fields that must agree before codes from two runs may share a store
COMPATIBLE_FIELDS = (
    "format",
    "codec",
    "sample_rate",
    "channels",
    "hop_length",
    "n_q",
    "codebook_size",
    "codes_dtype",
)


def codes_dtype(codebook_size: int) -> str:
    return "int16" if codebook_size <= 32768 else "int32"


def _json_seconds(value: float | None) -> float | str | None:
    """A segment time as JSON allows it: NaN and inf (which JSON lacks) become their text."""
    return value if value is None or math.isfinite(value) else str(value)


def shard_name(shard: int, num_shards: int) -> str:
    return f"{shard:05d}-of-{num_shards:05d}"


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
    data = store / "data"
    return sorted(p for p in data.glob("part-*.parquet") if PART_RE.search(p.name)) if data.is_dir() else []


def read_metadata(store: str | Path) -> dict[str, Any]:
    path = Path(store) / "tokens.json"
    if not path.is_file():
        raise StoreError(f"{store}: not a token store (no tokens.json)")
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


# tokens.json fields a reader relies on, and the values it accepts
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


STORE_ENTRIES = frozenset(
    (
        "tokens.json",
        "data",
        "errors",
        "done",
        "locks",
        INDEX_FILE,
        LEGACY_INDEX_FILE,
        "errors.jsonl",
        STATS_FILE,
        CARD_FILE,
    )
)


def check_store_target(store: Path) -> None:
    """Refuse to write a store into a folder that holds other files: a folder without tokens.json must be
    empty, or hold only what a store's first writers make (another shard may have started it)."""
    if not store.exists() or (store / "tokens.json").is_file():
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


class ShardWriter:
    """Writes one shard of a store: rows in atomic Parquet parts, failures in an append-only log."""

    def __init__(
        self, store: str | Path, metadata: dict[str, Any], shard: int = 0, num_shards: int = 1
    ) -> None:
        if not 0 <= shard < num_shards:
            raise StoreError(f"shard {shard} is outside 0..{num_shards - 1}")
        self.store = Path(store)
        self.shard, self.num_shards = shard, num_shards
        self.metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
        self.dtype = self.metadata["codes_dtype"]
        check_store_target(self.store)
        for sub in ("data", "errors", "done", "locks"):
            (self.store / sub).mkdir(parents=True, exist_ok=True)
        self._lock = _lock_shard(self.store, shard, num_shards)
        # temporary files of this shard left by a killed run (no other run writes them: we hold its lock)
        name = shard_name(shard, num_shards)
        for stale in [
            *(self.store / "data").glob(f".part-{name}-*"),
            *(self.store / "done").glob(f".shard-{name}.json.*"),
            *(self.store / "errors").glob(f".shard-{name}.jsonl.*"),
        ]:
            if is_temp_file(stale.name):
                stale.unlink(missing_ok=True)
        self._check_or_write_metadata()
        self.errors_path = self.store / "errors" / f"shard-{shard_name(shard, num_shards)}.jsonl"
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
        path = self.store / "tokens.json"
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
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= k):
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
        path = self.store / "data" / f"part-{shard_name(self.shard, self.num_shards)}-{self._seq:06d}.parquet"
        atomic_write(
            path, lambda tmp: pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        )
        self._seq += 1
        self._rows.clear()
        return path

    def finish(self, summary: dict[str, Any]) -> None:
        """Flush, mark this shard done and release its lock."""
        self.flush()
        done = self.store / "done" / f"shard-{shard_name(self.shard, self.num_shards)}.json"
        atomic_write_text(done, json.dumps(summary, indent=2) + "\n")
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

    path = store / "locks" / f"shard-{shard_name(shard, num_shards)}.lock"
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


def index_path(store: str | Path) -> Path:
    """The store's index file: `index.pq`, or an older store's `index.parquet` when only that exists."""
    store = Path(store)
    legacy = store / LEGACY_INDEX_FILE
    return legacy if legacy.is_file() and not (store / INDEX_FILE).is_file() else store / INDEX_FILE


_HF_DTYPES = {"string": "string", "double": "float64", "float": "float32"}


def features_yaml(schema) -> list[str]:
    """A pyarrow schema as the `dataset_info: features:` lines of a Hugging Face dataset card (nested
    lists as `sequence:`, integer widths kept)."""
    lines = []
    for column in schema:
        kind, depth = column.type, 0
        while hasattr(kind, "value_type"):
            kind, depth = kind.value_type, depth + 1
        dtype = _HF_DTYPES.get(str(kind), str(kind))
        lines.append(f"  - name: {column.name}")
        if depth == 0:
            lines.append(f"    dtype: {dtype}")
        for level in range(depth):
            indent = "    " + "  " * level
            lines.append(f"{indent}sequence:" if level < depth - 1 else f"{indent}sequence: {dtype}")
    return lines


def card_header(data_files: str | dict[str, str], schema) -> str:
    """The YAML header of a dataset card: a `train` split over `data_files` (or one split per entry of
    a {split: files} dict), and the features."""
    splits = data_files if isinstance(data_files, dict) else {"train": data_files}
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split, files in splits.items():
        lines += [f"  - split: {split}", f'    path: "{files}"']
    lines += ["dataset_info:", "  features:", *features_yaml(schema)]
    return "\n".join([*lines, "tags:", "- audio-tokens", "- codeclab", "---", ""]) + "\n"


def dataset_card(metadata: dict[str, Any], items: int, with_meta: bool = True) -> str:
    """The store's README.md: a YAML header Hugging Face datasets reads (one `train` split over the
    part files, the features with the codes' own integer type), then what the store holds."""
    codec = metadata.get("codec", {}) or {}
    schema = _schema(str(metadata.get("codes_dtype", "int16")))
    if not with_meta:  # parts written before the meta column: the card lists the columns they have
        schema = schema.remove(schema.get_field_index("meta"))
    return card_header("data/part-*.parquet", schema) + (
        f"# codeclab token store\n\n{items} items coded by `{codec.get('name')}` "
        f"({metadata.get('frame_rate')} frames/s, {metadata.get('n_q')} codebooks of "
        f"{metadata.get('codebook_size')} codes, stored as {metadata.get('codes_dtype', 'int16')}). "
        "Written by `codeclab tokenize`; `tokens.json` records the codec's config and weights sha256.\n\n"
        "```python\n"
        "import datasets\n"
        'ds = datasets.load_dataset(STORE_DIR, split="train")                  # codes: [n_q][frames]\n'
        'ds = datasets.load_dataset(STORE_DIR, split="train", streaming=True)  # read lazily\n'
        "```\n\n"
        "Or `codeclab.TokenStore(STORE_DIR)`, which also checks every part's sha256 and the index.\n"
    )


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
    done_dir = Path(store) / "done"
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


def part_columns(part: Path, columns: list[str]) -> dict[str, list]:
    """Columns of one part file as Python lists; a part that cannot be read or decoded (corrupt bytes)
    raises StoreError naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(part, columns=columns, page_checksum_verification=True)
        _check_column_types(table, part, [c for c in columns if c in RECORD_COLUMNS])
        return {name: table.column(name).to_pylist() for name in columns}
    except StoreError:
        raise
    except (OSError, pa.ArrowException, ValueError, KeyError) as err:
        raise StoreError(f"{part}: cannot read this part of the store ({err})") from None


def finished_ids(store: str | Path) -> tuple[set[str], set[str]]:
    """(ids with codes in any part file, ids in any error log) of a store (empty sets for a new one)."""
    store = Path(store)
    done: set[str] = set()
    if part_files(store):
        for part in part_files(store):
            done.update(part_columns(part, ["id"])["id"])
    failed: set[str] = set()
    errors_dir = store / "errors"
    if errors_dir.is_dir():
        for log in sorted(errors_dir.glob("shard-*.jsonl")):
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


def shards_done(store: str | Path, num_shards: int) -> bool:
    done_dir = Path(store) / "done"
    return all((done_dir / f"shard-{shard_name(i, num_shards)}.json").is_file() for i in range(num_shards))


def code_counts(items: Iterable[np.ndarray], n_q: int, k: int) -> np.ndarray:
    """How often each code occurs per codebook over items' codes ([n_q, frames] each) -> [n_q, k]."""
    counts = np.zeros((n_q, k), dtype=np.int64)
    for codes in items:
        for q in range(n_q):
            counts[q] += np.bincount(np.asarray(codes[q], dtype=np.int64), minlength=k)[:k]
    return counts


def sparse_counts(counts: np.ndarray) -> list[list[list[int]]]:
    return [[[int(c), int(row[c])] for c in np.flatnonzero(row)] for row in counts]


def _part_counts(part: Path, keep: list[int], total_rows: int, n_q: int, k: int) -> np.ndarray:
    """Code counts of the rows `keep` of a part: from its metadata when every row is kept, else (or for
    parts written before counts were recorded) from its codes."""
    import pyarrow.parquet as pq

    stored = (pq.read_schema(part).metadata or {}).get(PART_COUNTS.encode())
    if stored is not None and len(keep) == total_rows:
        counts = np.zeros((n_q, k), dtype=np.int64)
        try:
            for q, pairs in enumerate(json.loads(stored)[:n_q]):
                for code, count in pairs:
                    counts[q, code] += count
            return counts
        except (ValueError, TypeError, IndexError):
            pass  # unreadable counts: count the codes themselves
    codes = part_columns(part, ["codes"])["codes"]
    return code_counts((np.asarray(codes[row]) for row in keep), n_q, k)


def code_statistics(counts: np.ndarray, frame_rate: float, digits: int | None = 4) -> dict[str, Any]:
    """Per codebook entropy (bits per code) and usage (share of codes seen) of counts [n_q, k], and the
    entropy rate frame_rate x sum of entropies (what an ideal coder with these statistics would spend);
    rounded to `digits` (None: not rounded)."""

    def rounded(x: float) -> float:
        return x if digits is None else round(x, digits)

    per = []
    for row in counts:
        p = row[row > 0] / max(int(row.sum()), 1)
        per.append(
            {
                "entropy_bits": rounded(float(-(p * np.log2(p)).sum())),
                "usage": rounded(float((row > 0).mean())),
            }
        )
    return {
        "frames": int(counts[0].sum()) if len(counts) else 0,
        "per_codebook": per,
        "entropy_kbps": rounded(frame_rate * sum(c["entropy_bits"] for c in per) / 1000),
    }


STALE_TEMP_SECONDS = 3600.0  # a merge's temporary file older than this was left by a killed merge


def _sweep_merge_leftovers(store: Path) -> None:
    """Remove the temporary files (index, errors, stats, card) of merges killed mid-write: those older
    than STALE_TEMP_SECONDS (a merge running now, in another process, writes fresh ones)."""
    now = time.time()
    for name in (INDEX_FILE, "errors.jsonl", STATS_FILE, CARD_FILE):
        for stale in store.glob(f".{name}.*"):
            try:
                old = now - stale.stat().st_mtime > STALE_TEMP_SECONDS
            except OSError:
                continue
            if is_temp_file(stale.name) and old:
                stale.unlink(missing_ok=True)


PART_STATS = "codeclab.part_stats"  # the index's schema metadata: {part file: [size, mtime_ns]}


def _previous_index(store: Path):
    """(index table, {file: sha256}, {file: [size, mtime_ns]}) of the store's last merge, or None when
    there is none that recorded part stats (then every part is read and hashed)."""
    import pyarrow.parquet as pq

    index = store / INDEX_FILE
    if not index.is_file():
        return None
    try:
        table = pq.read_table(index, page_checksum_verification=True)
        metadata = table.schema.metadata or {}
        checksums = json.loads(metadata[PART_CHECKSUMS.encode()])
        stats = json.loads(metadata[PART_STATS.encode()])
    except Exception:  # an older or unreadable index: the merge starts over  # noqa: BLE001
        return None
    if not isinstance(checksums, dict) or not isinstance(stats, dict):
        return None
    return table, checksums, stats


def _part_rows(part: Path, name: str, previous, stat_key: list[int]):
    """The index rows of one part (id, file, row, num_frames, duration) and its sha256: from the last
    merge's index when the part is unchanged since (same size and mtime), else read and hashed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if previous is not None:
        table, checksums, stats = previous
        if stats.get(name) == stat_key and name in checksums:
            rows = table.filter(pc.equal(table.column("file"), name))
            return rows.select(["id", "file", "row", "num_frames", "duration"]), checksums[name]
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
    errors_dir = store / "errors"
    logged = (
        [row for log in sorted(errors_dir.glob("shard-*.jsonl")) for row in _read_errors(log)]
        if errors_dir.is_dir()
        else []
    )
    if logged:
        done = pc.is_in(pa.array([row["id"] for row in logged], pa.string()), value_set=index.column("id"))
        for row, tokenized in zip(logged, done.to_pylist()):
            if not tokenized:
                errors[row["id"]] = row
    lines = "".join(json.dumps(errors[key], ensure_ascii=False) + "\n" for key in sorted(errors))
    atomic_write_text(store / "errors.jsonl", lines)
    stats = {"items": index.num_rows, **code_statistics(counts, float(meta["frame_rate"]))}
    atomic_write_text(store / STATS_FILE, json.dumps(stats, indent=1) + "\n")
    with_meta = all("meta" in pq.read_schema(part).names for part in parts)
    atomic_write_text(store / CARD_FILE, dataset_card(meta, index.num_rows, with_meta))
    # the index last: its presence (covering every part) is what marks the merge finished
    atomic_write(store / INDEX_FILE, lambda tmp: pq.write_table(index, tmp, write_page_checksum=True))
    (store / LEGACY_INDEX_FILE).unlink(missing_ok=True)  # an older store's index, now replaced
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
        """A Parquet table of this store (`dictionary`: columns read dictionary-encoded, as stored); any
        failure (including a page checksum) names the file."""
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
            return table
        except (OSError, pa.ArrowException, ValueError) as err:
            raise StoreError(f"{path}: cannot read this part of the store ({err})") from None

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
        import pyarrow.parquet as pq

        found: dict[str, dict[str, Any]] = {}
        for file, rows in self.rows_by_part().items():
            path = self.path / file
            if "meta" not in pq.read_schema(path).names:
                continue  # a part written before the meta column
            column = self._read(path, ["meta"]).column("meta").to_pylist()
            for row, item_id in rows:
                if not 0 <= row < len(column):
                    raise StoreError(f"{path} row {row}: the part has only {len(column)} rows")
                found[item_id] = record_meta(column[row], f"{path} row {row}")
        return found

    def errors(self) -> list[dict[str, Any]]:
        """Failed items (from errors.jsonl, or the shard logs before a merge)."""
        merged = self.path / "errors.jsonl"
        if merged.is_file() and index_path(self.path).is_file():
            return _read_errors(merged)
        rows: dict[str, dict[str, Any]] = {}
        for log in sorted((self.path / "errors").glob("shard-*.jsonl")):
            for row in _read_errors(log):
                if row.get("id") not in self._index:
                    rows[row["id"]] = row
        return [rows[k] for k in sorted(rows)]

    def total_duration(self) -> float:
        """Seconds of audio tokenized, from the duration column (codes are not read)."""
        import pyarrow.parquet as pq

        total = 0.0
        for file, rows in self.rows_by_part().items():
            wanted = {row for row, _ in rows}
            durations = pq.read_table(self.path / file, columns=["duration"]).column("duration").to_pylist()
            total += sum(d for row, d in enumerate(durations) if row in wanted)
        return total
