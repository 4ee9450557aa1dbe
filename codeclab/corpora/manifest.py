"""Corpus inputs: directories, globs, single files and manifests, resolved into `AudioItem`s.

- A directory is searched recursively for files with an audio extension; an item's id is its path
  relative to the directory, with '/' separators and its extension ("spk1/utt001.flac").
- A glob ("data/**/*.wav") gives the files it matches; ids are relative to the glob's fixed prefix.
- A manifest (.jsonl, .csv or .tsv, each optionally gzipped: .jsonl.gz) lists items: `id`, `path`
  (relative paths are relative to the manifest), optional `start` / `end` (seconds, for segments of a
  file) and `text`; every other column (`split`, `language`, `speaker`, anything) is kept as the item's
  metadata and travels into the store and its exports. Manifests are read line by line (streamed).
- lhotse manifests (recordings or cuts, .jsonl[.gz]) and Shar directories, WebDataset tar shards (and
  brace patterns, `shards/{000..099}.tar`), and Hugging Face datasets (a `save_to_disk` directory or
  Parquet files with an `Audio` column) are read by `codeclab.corpora.formats`.
- A single audio file is one item whose id is its file name.

Paths are recorded absolute, so a store names its sources wherever it is read from.

Ids must be unique across all inputs: a clash is an error that names both sources.
"""

from __future__ import annotations

import csv
import functools
import glob
import gzip
import json
import math
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codeclab.corpora.items import (  # noqa: F401  (re-exported: the names' home before 0.5)
    ITEM_COLUMNS,
    MAX_ID_PART_BYTES,
    AudioItem,
    ManifestError,
    check_item_id,
    is_audio_file,
    make_item,
)

MANIFEST_EXTENSIONS = (".jsonl", ".csv", ".tsv")


def manifest_kind(path: str | Path) -> str | None:
    """ "jsonl", "csv" or "tsv" for a manifest's name (gzipped or not), else None."""
    name = Path(path).name.lower()
    name = name[: -len(".gz")] if name.endswith(".gz") else name
    return next((ext[1:] for ext in MANIFEST_EXTENSIONS if name.endswith(ext)), None)


def _from_directory(root: Path) -> list[AudioItem]:
    """Audio files under `root`, following symbolic links but entering each real directory once (a link
    loop must not list one file many times); an unreadable directory is an error, never skipped."""
    items = []
    visited: set[tuple[int, int]] = set()

    def unreadable(err: OSError) -> None:
        raise ManifestError(f"{err.filename}: cannot read the directory ({err.strerror})")

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        info = os.stat(dirpath)
        if (info.st_dev, info.st_ino) in visited:
            dirnames[:] = []
            continue
        visited.add((info.st_dev, info.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith(".") or not is_audio_file(name):
                continue
            full = Path(dirpath) / name
            items.append(
                AudioItem(full.relative_to(root).as_posix(), os.path.abspath(full), source=str(root))
            )
    return items


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _from_glob(pattern: str) -> list[AudioItem]:
    base = _glob_base(pattern)
    items = []
    for match in sorted(glob.glob(pattern, recursive=True)):
        p = Path(match)
        if p.is_file() and is_audio_file(p):
            items.append(AudioItem(p.relative_to(base).as_posix(), os.path.abspath(p), source=pattern))
    return items


def _number(value, manifest: Path, line: int, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ManifestError(f"{manifest}:{line}: {field} must be a number of seconds, got {value!r}")
    if number < 0:
        raise ManifestError(f"{manifest}:{line}: {field} must not be negative, got {number}")
    return number


def _shared(value):
    """Short strings (speaker, split, language: the same few values on many rows) held once, interned."""
    return sys.intern(value) if isinstance(value, str) and len(value) <= 64 else value


@functools.lru_cache(maxsize=64)
def _source_name(manifest: Path) -> str:
    """One string per manifest, shared by all its items (not a copy per row)."""
    return str(manifest)


def _row_item(row: dict, manifest: Path, line: int) -> AudioItem:
    if not isinstance(row, dict):
        raise ManifestError(f"{manifest}:{line}: expected an object with 'id' and 'path'")
    path = row.get("path")
    if not path:
        raise ManifestError(f"{manifest}:{line}: missing 'path'")
    full = Path(str(path))
    if not full.is_absolute():
        full = manifest.parent / full
    item_id = row.get("id")
    if item_id is None or str(item_id) == "":
        raise ManifestError(f"{manifest}:{line}: missing 'id'")
    check_item_id(str(item_id), f"{manifest}:{line}")
    start = _number(row.get("start"), manifest, line, "start")
    end = _number(row.get("end"), manifest, line, "end")
    if start is not None and end is not None and end <= start:
        raise ManifestError(f"{manifest}:{line}: end ({end}) must be after start ({start})")
    text = row.get("text")
    meta = {
        sys.intern(k): _shared(v) for k, v in row.items() if k not in ITEM_COLUMNS and v not in (None, "")
    }
    return make_item(
        str(item_id),
        os.path.abspath(full),
        source=_source_name(manifest),
        start=start,
        end=end,
        text=None if text in (None, "") else str(text),
        meta=meta,
    )


def read_manifest(manifest: str | Path) -> list[AudioItem]:
    """Items of a JSONL / CSV / TSV manifest (gzipped or not); errors name the file and line."""
    return list(iter_manifest(manifest))


def iter_manifest(manifest: str | Path) -> Iterator[AudioItem]:
    """The items of a manifest, read line by line (the file is never held whole in memory)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest")
    kind = manifest_kind(manifest)
    lines = _manifest_lines(manifest)
    if kind == "jsonl":
        for line_no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{manifest}:{line_no}: invalid JSON ({err.msg})") from None
            yield _row_item(row, manifest, line_no)
        return
    delimiter = "\t" if kind == "tsv" else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    try:
        if reader.fieldnames is None or not {"id", "path"} <= set(reader.fieldnames):
            raise ManifestError(
                f"{manifest}:1: the header must name at least 'id' and 'path', got {reader.fieldnames}"
            )
        for row in reader:
            yield _row_item(row, manifest, reader.line_num)
    except csv.Error as err:
        raise ManifestError(
            f"{manifest}:{reader.line_num}: malformed {delimiter!r}-separated line ({err})"
        ) from None


def _manifest_lines(manifest: Path) -> Iterator[str]:
    """The manifest's lines (ends kept): UTF-8, with or without a byte-order mark, gunzipped when the name
    ends in .gz; a line in another encoding, or a corrupt gzip stream, is an error naming the line."""
    gz = manifest.name.lower().endswith(".gz")
    line_no = 0
    try:
        with gzip.open(manifest, "rb") if gz else open(manifest, "rb") as fh:
            for line_no, data in enumerate(fh, 1):
                if line_no == 1 and data.startswith(b"\xef\xbb\xbf"):
                    data = data[3:]
                try:
                    yield data.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ManifestError(
                        f"{manifest}:{line_no}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the "
                        "manifest as UTF-8"
                    ) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ManifestError(f"{manifest}:{line_no + 1}: corrupt gzip data ({err})") from None
    except OSError as err:
        raise ManifestError(f"{manifest}: cannot read ({err.strerror or err})") from None


def iter_inputs(inputs: list[str]) -> Iterator[AudioItem]:
    """The items of every input, in input order; manifests are streamed line by line."""
    from codeclab.corpora import formats

    if not inputs:
        raise ManifestError("no inputs given")
    for spec in inputs:
        path = Path(spec)
        special = formats.items_of(spec)  # lhotse, Shar, WebDataset, Hugging Face; None for the rest
        if special is not None:
            yield from special
        elif path.is_dir():
            yield from _from_directory(path)
        elif path.is_file() and manifest_kind(path) is not None:
            yield from iter_manifest(path)
        elif path.is_file():
            yield AudioItem(path.name, os.path.abspath(path), source=str(path))
        elif glob.has_magic(spec):
            found = _from_glob(spec)
            if not found:
                raise ManifestError(f"{spec}: the pattern matches no audio files")
            yield from found
        else:
            raise ManifestError(f"{spec}: no such file, directory or pattern")


def discover(inputs: list[str], keep: Callable[[str], bool] | None = None) -> list[AudioItem]:
    """Resolve directories, globs, manifests and files into items sorted by id; with `keep`, only the
    items whose id it accepts are held (a shard of a corpus: the rest are read and let go, so a rank's
    memory holds its share). Ids are checked unique among the items held; a shard function of the id
    sends both copies of a duplicate to the same shard, so every duplicate is still caught."""
    items: list[AudioItem] = []
    for item in iter_inputs(inputs):
        if keep is not None and not keep(item.id):
            continue
        check_item_id(item.id, item.source or item.path)
        items.append(item)
    items.sort(key=lambda it: it.id)  # stable: of two items with one id, the first listed comes first
    for other, item in zip(items, items[1:]):
        if other.id == item.id:
            raise ManifestError(
                f"duplicate id {item.id!r}: {other.describe()} (from {other.source}) and {item.describe()} "
                f"(from {item.source}); give each input its own store or use a manifest with unique ids"
            )
    return items


def write_manifest(items: list[AudioItem], path: str | Path) -> None:
    """Write items as a JSONL manifest."""
    with open(path, "w", encoding="utf-8") as fh:
        for it in items:
            row: dict[str, Any] = {"id": it.id, "path": it.path}
            if it.start is not None:
                row["start"] = it.start
            if it.end is not None:
                row["end"] = it.end
            if it.text is not None:
                row["text"] = it.text
            if it.split is not None:
                row["split"] = it.split
            if it.language is not None:
                row["language"] = it.language
            row.update({k: v for k, v in it.meta.items() if k not in row})
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
