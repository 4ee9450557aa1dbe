"""Corpus inputs in the formats people keep them in: which reader takes an input, by its name and content.

- WebDataset tar shards (`x.tar`, or brace patterns `shards/{000..099}.tar`): `webdataset_input`.
- lhotse manifests (a RecordingSet or CutSet `.jsonl[.gz]`) and lhotse Shar directories: `lhotse_input`.
- Hugging Face datasets (a `save_to_disk` directory, a DatasetDict directory, `.parquet` files): `hf_input`.

`items_of(spec)` returns the items of such an input, or None when the input is something else (audio
files, directories of them, globs, codeclab manifests), which `corpora.manifest.discover` then reads.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from codeclab.corpora.items import AudioItem, ManifestError

COMPRESSED_TARS = (".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2")
LHOTSE_CUT_TYPES = ("MonoCut", "MultiCut", "MixedCut", "PaddingCut")


def is_brace_pattern(spec: str) -> bool:
    """True for `name{000..009}.tar` / `{a,b}.tar` style patterns (WebDataset's shard lists)."""
    return "{" in spec and "}" in spec and (".." in spec or "," in spec)


def items_of(spec: str) -> list[AudioItem] | None:
    """The items of `spec` when it is a tar shard list, a lhotse manifest or Shar directory, or a Hugging
    Face dataset; None otherwise."""
    path = Path(spec)
    if path.name.lower().endswith(COMPRESSED_TARS):
        raise ManifestError(
            f"{spec}: a compressed tar has no random access; decompress it once (`gunzip` / `zstd -d`) and "
            "give the .tar"
        )
    if is_brace_pattern(spec) or (path.suffix.lower() == ".tar" and not path.is_dir()):
        from codeclab.corpora.webdataset_input import webdataset_items

        return webdataset_items(spec)
    if path.is_dir():
        if any(path.glob("cuts.*.jsonl*")):
            from codeclab.corpora.lhotse_input import shar_items

            return shar_items(path)
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            from codeclab.corpora.hf_input import hf_disk_items

            return hf_disk_items(path)
        return None
    if path.is_file() and path.suffix.lower() == ".parquet":
        from codeclab.corpora.hf_input import parquet_items

        return parquet_items(path)
    if path.is_file() and path.name.lower().endswith((".jsonl", ".jsonl.gz")):
        kind = lhotse_kind(path)
        if kind is not None:
            from codeclab.corpora.lhotse_input import lhotse_manifest_items

            return lhotse_manifest_items(path, kind)
    return None


def lhotse_kind(path: Path) -> str | None:
    """ "recordings", "cuts" or "supervisions" when the first row of a JSONL manifest is shaped like that
    lhotse manifest's rows; None for a codeclab manifest (or an unreadable one: its reader says why)."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig") as fh:
            first = next((line for line in fh if line.strip()), "")
        row = json.loads(first) if first else None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or "path" in row:
        return None
    if "sources" in row and "sampling_rate" in row:
        return "recordings"
    if row.get("type") in LHOTSE_CUT_TYPES or ("recording" in row and "duration" in row):
        return "cuts"
    if "recording_id" in row and "duration" in row:
        return "supervisions"
    return None
