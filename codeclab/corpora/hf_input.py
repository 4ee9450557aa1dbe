"""Hugging Face datasets with an `Audio` column as corpus input: a `save_to_disk` directory (a Dataset, or
a DatasetDict whose split names become the items' `split`), or Parquet files (as the Hub stores them).

The audio column is the one whose feature is `Audio` (or, in Parquet written without Hugging Face's
schema metadata, a struct of `bytes` and `path`); it is never decoded by `datasets`: the tokenize workers
read each row's bytes and decode them as they decode files. An `id` column names the items; without one
an item's id is `<name>/<row>` (8 digits). `text`, `start` and `end` columns fill the item's fields and
every other column goes into its metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeclab._optional import optional_import
from codeclab.corpora.items import (
    ITEM_COLUMNS,
    AudioItem,
    ManifestError,
    check_item_id,
    is_json_value,
    make_item,
)
from codeclab.corpora.members import Member

BATCH_ROWS = 1024


def hf_disk_items(directory: Path) -> list[AudioItem]:
    """Items of a `save_to_disk` directory (Dataset or DatasetDict)."""
    datasets = optional_import("datasets", "llm", "reading Hugging Face datasets")
    try:
        loaded = datasets.load_from_disk(str(directory))
    except Exception as err:  # datasets raises FileNotFoundError, ValueError, ArrowInvalid
        raise ManifestError(f"{directory}: datasets cannot load it ({type(err).__name__}: {err})") from None
    if isinstance(loaded, datasets.DatasetDict):
        items = []
        for split, dataset in loaded.items():
            items.extend(_dataset_items(dataset, directory / split, str(directory), split))
        return items
    return _dataset_items(loaded, directory, str(directory), None)


def _audio_column(features: dict[str, Any], where: str) -> str:
    import datasets

    found = [name for name, feature in features.items() if isinstance(feature, datasets.Audio)]
    return _one_audio_column(found, where)


def _one_audio_column(found: list[str], where: str) -> str:
    if len(found) == 1:
        return found[0]
    if "audio" in found:
        return "audio"
    if not found:
        raise ManifestError(f"{where}: no Audio column (a column of Audio feature, or bytes + path structs)")
    raise ManifestError(f"{where}: several Audio columns ({', '.join(found)}) and none named 'audio'")


def _dataset_items(dataset, directory: Path, source: str, split: str | None) -> list[AudioItem]:
    column = _audio_column(dict(dataset.features), str(directory))
    others = [name for name in dataset.column_names if name != column]
    rows = (dict(zip(others, values)) for values in zip(*_column_batches(dataset, others)))
    member = lambda row: Member("hf", column, row)  # noqa: E731
    return _rows_to_items(rows, str(directory.resolve()), source, directory.name, member, split)


def _column_batches(dataset, columns: list[str]) -> list[Iterator[Any]]:
    """One iterator per column over its values, read batch by batch (the audio column is not touched)."""
    if not columns:
        return [iter(range(len(dataset)))]

    def values(name: str) -> Iterator[Any]:
        for start in range(0, len(dataset), BATCH_ROWS):
            yield from dataset.data.column(name).slice(start, BATCH_ROWS).to_pylist()

    return [values(name) for name in columns]


def parquet_items(path: Path) -> list[AudioItem]:
    """Items of a Parquet file with an audio column (Hugging Face's Audio, or bytes + path structs)."""
    pq = optional_import("pyarrow.parquet", "llm", "reading Parquet datasets")
    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # ArrowInvalid, OSError
        raise ManifestError(f"{path}: not a readable Parquet file ({err})") from None
    schema = file.schema_arrow
    column = _one_audio_column(_parquet_audio_columns(schema), str(path))
    others = [name for name in schema.names if name != column]
    rows = (
        row
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=others or None)
        for row in (batch.to_pylist() if others else [{}] * batch.num_rows)
    )
    member = lambda row: Member("parquet", column, row)  # noqa: E731
    split = _split_from_name(path.name)
    return _rows_to_items(rows, os.path.abspath(path), str(path), path.stem, member, split)


def _parquet_audio_columns(schema) -> list[str]:
    """Columns marked Audio in Hugging Face's schema metadata, else struct columns of bytes and path."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if raw:
        try:
            features = json.loads(raw).get("info", {}).get("features", {})
            marked = [
                name for name, f in features.items() if isinstance(f, dict) and f.get("_type") == "Audio"
            ]
            if marked:
                return marked
        except (json.JSONDecodeError, AttributeError):
            pass
    found = []
    for field in schema:
        names = (
            {field.type.field(i).name for i in range(field.type.num_fields)}
            if hasattr(field.type, "num_fields")
            else set()
        )
        if {"bytes", "path"} <= names:
            found.append(field.name)
    return found


def _split_from_name(name: str) -> str | None:
    """The split of a Hub-style Parquet name (`train-00000-of-00004.parquet`, `test.parquet`)."""
    stem = name.split("-")[0].split(".")[0]
    return stem if stem in ("train", "validation", "valid", "dev", "test") else None


def _rows_to_items(rows, path: str, source: str, name: str, member, split: str | None) -> list[AudioItem]:
    items = []
    for row_number, row in enumerate(rows):
        item_id = str(row["id"]) if row.get("id") not in (None, "") else f"{name}/{row_number:08d}"
        check_item_id(item_id, f"{source} row {row_number}")
        meta = {k: v for k, v in row.items() if k not in ITEM_COLUMNS and v is not None and is_json_value(v)}
        if split is not None:
            meta.setdefault("split", split)
        text = row.get("text")
        items.append(
            make_item(
                item_id,
                path,
                source=source,
                start=_seconds(row.get("start")),
                end=_seconds(row.get("end")),
                text=None if text in (None, "") else str(text),
                meta=meta,
                member=member(row_number),
            )
        )
    return items


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)
