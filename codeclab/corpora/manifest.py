"""Corpus inputs: directories, globs, single files and manifests, resolved into `AudioItem`s.

- A directory is searched recursively for files with an audio extension; an item's id is its path
  relative to the directory, with '/' separators and its extension ("spk1/utt001.flac").
- A glob ("data/**/*.wav") gives the files it matches; ids are relative to the glob's fixed prefix.
- A manifest (.jsonl, .csv or .tsv) lists items: `id`, `path` (relative paths are relative to the
  manifest), optional `start` / `end` (seconds, for segments of a file), `text` and `split`.
- A single audio file is one item whose id is its file name.

Ids must be unique across all inputs: a clash is an error that names both sources.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from codeclab.audio.io import AUDIO_EXTENSIONS

MANIFEST_EXTENSIONS = (".jsonl", ".csv", ".tsv")


class ManifestError(ValueError):
    """A manifest or input list is malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class AudioItem:
    id: str
    path: str
    start: float | None = None
    end: float | None = None
    text: str | None = None
    source: str = ""
    split: str | None = None  # e.g. "train" / "validation", from a manifest's `split` column
    language: str | None = None  # from a manifest's `language` column (e.g. WER runs on English items)

    def describe(self) -> str:
        seg = (
            ""
            if self.start is None and self.end is None
            else f" [{self.start or 0:g}s-{'' if self.end is None else f'{self.end:g}s'}]"
        )
        return f"{self.path}{seg}"


def is_audio_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


MAX_ID_PART_BYTES = 240


def check_item_id(item_id: str, where: str) -> str:
    """An id is a relative POSIX path without '.' or '..' parts (stores and detokenize make files from
    ids, so an id must never point outside its output folder); `where` names the source in errors."""
    parts = item_id.split("/")
    if (
        not item_id
        or item_id.startswith("/")
        or "\\" in item_id
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(c) < 32 for c in item_id)
    ):
        raise ManifestError(
            f"{where}: invalid id {item_id!r}: ids are relative paths like 'spk1/utt001.wav', without "
            "'.', '..', empty parts, backslashes or control characters"
        )
    # detokenize writes ID.wav: each part, with the extension it may gain, must fit a file name (255 bytes)
    long_part = next((part for part in parts if len(part.encode("utf-8")) > MAX_ID_PART_BYTES), None)
    if long_part is not None:
        raise ManifestError(
            f"{where}: invalid id {item_id[:60]!r}...: a part of an id may hold at most {MAX_ID_PART_BYTES} "
            f"bytes (file systems take 255 per name), this one has {len(long_part.encode('utf-8'))}"
        )
    return item_id


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
            items.append(AudioItem(full.relative_to(root).as_posix(), str(full), source=str(root)))
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
            items.append(AudioItem(p.relative_to(base).as_posix(), str(p), source=pattern))
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
    text, split, language = row.get("text"), row.get("split"), row.get("language")
    return AudioItem(
        str(item_id),
        str(full),
        start,
        end,
        None if text in (None, "") else str(text),
        source=str(manifest),
        split=None if split in (None, "") else str(split),
        language=None if language in (None, "") else str(language),
    )


def read_manifest(manifest: str | Path) -> list[AudioItem]:
    """Items of a JSONL / CSV / TSV manifest; errors name the file and line."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest")
    items: list[AudioItem] = []
    text = _manifest_text(manifest)
    if manifest.suffix.lower() == ".jsonl":
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{manifest}:{line_no}: invalid JSON ({err.msg})") from None
            items.append(_row_item(row, manifest, line_no))
    else:
        delimiter = "\t" if manifest.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            if reader.fieldnames is None or not {"id", "path"} <= set(reader.fieldnames):
                raise ManifestError(
                    f"{manifest}:1: the header must name at least 'id' and 'path', got {reader.fieldnames}"
                )
            for row in reader:
                items.append(_row_item(row, manifest, reader.line_num))
        except csv.Error as err:
            raise ManifestError(
                f"{manifest}:{reader.line_num}: malformed {delimiter!r}-separated line ({err})"
            ) from None
    return items


def _manifest_text(manifest: Path) -> str:
    """The manifest's text: UTF-8, with or without a byte-order mark; other encodings name the line."""
    try:
        data = manifest.read_bytes()
    except OSError as err:
        raise ManifestError(f"{manifest}: cannot read ({err.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ManifestError(
            f"{manifest}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the manifest as UTF-8"
        ) from None


def discover(inputs: list[str]) -> list[AudioItem]:
    """Resolve directories, globs, manifests and files into items sorted by id."""
    if not inputs:
        raise ManifestError("no inputs given")
    items: list[AudioItem] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            items.extend(_from_directory(path))
        elif path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
            items.extend(read_manifest(path))
        elif path.is_file():
            items.append(AudioItem(path.name, str(path), source=str(path)))
        elif glob.has_magic(spec):
            found = _from_glob(spec)
            if not found:
                raise ManifestError(f"{spec}: the pattern matches no audio files")
            items.extend(found)
        else:
            raise ManifestError(f"{spec}: no such file, directory or pattern")
    seen: dict[str, AudioItem] = {}
    for item in items:
        check_item_id(item.id, item.source or item.path)
        other = seen.get(item.id)
        if other is not None:
            raise ManifestError(
                f"duplicate id {item.id!r}: {other.describe()} (from {other.source}) and {item.describe()} "
                f"(from {item.source}); give each input its own store or use a manifest with unique ids"
            )
        seen[item.id] = item
    return sorted(items, key=lambda it: it.id)


def write_manifest(items: list[AudioItem], path: str | Path) -> None:
    """Write items as a JSONL manifest."""
    with open(path, "w", encoding="utf-8") as fh:
        for it in items:
            row = {"id": it.id, "path": it.path}
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
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
