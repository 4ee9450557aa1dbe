"""A token store in other tools' corpus formats: lhotse cuts and WebDataset tar shards.

- `export_lhotse(store, out)`: `out/cuts.jsonl.gz`, one MonoCut per item (id, offset, duration, the source
  recording when it is a plain file that still exists, a supervision with the text, speaker and language,
  the other metadata as custom fields) whose custom field `codes` is a lhotse `TemporalArray` of shape
  [frames, n_q] (lhotse's time-first layout) with frame_shift = 1 / frame rate, stored as one `.npy` per
  item under `out/codes/`. lhotse alone loads them: `CutSet.from_file(...)`, `cut.load_codes()`.
- `export_webdataset(store, out, shard_size)`: `out/shard-NNNNNN.tar`, each sample holding
  `codes.npy` ([n_q, frames], the store's integer type) and `json` (id, text, duration, path, sha256,
  start, end and the metadata). A sample's key is its id with `%` and `.` percent-escaped (WebDataset
  splits keys at the first dot); the JSON keeps the id as it is.

Both refuse an `out` that holds files (nothing is overwritten) and write the store's items sorted by id.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._files import atomic_write_json
from codeclab._optional import optional_import
from codeclab._progress import progress_iter
from codeclab.tokens.hf_tokenizer import check_outside_store
from codeclab.tokens.store import StoreError, TokenRecord, TokenStore

SUPERVISION_FIELDS = ("speaker", "language", "gender")


def webdataset_key(item_id: str) -> str:
    """A WebDataset sample key for an id: `%` and `.` percent-escaped (reversible)."""
    return item_id.replace("%", "%25").replace(".", "%2E")


def _empty_target(out: Path, store: Path) -> None:
    check_outside_store(store, out, StoreError)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"{out}: exists and is not an empty directory; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)


def _sidecar(record: TokenRecord) -> dict[str, Any]:
    return {
        **record.meta,
        "id": record.id,
        "text": record.text,
        "duration": record.duration,
        "num_frames": record.num_frames,
        "path": record.path,
        "sha256": record.sha256,
        "start": record.start,
        "end": record.end,
    }


def export_webdataset(store: str | Path, out: str | Path, shard_size: int = 10_000) -> list[Path]:
    """Write the store as WebDataset tar shards of at most `shard_size` samples; returns the shards."""
    wds = optional_import("webdataset", "webdataset", "the WebDataset export")
    if shard_size < 1:
        raise StoreError(f"--shard-size must be at least 1, got {shard_size}")
    tokens, out = TokenStore(store), Path(out)
    _empty_target(out, Path(store))
    ids = tokens.ids()
    shards: list[Path] = []
    sink: Any = None  # the open webdataset.TarWriter
    try:
        for n, item_id in enumerate(progress_iter(ids, f"export {out.name}", len(ids), "items")):
            if n % shard_size == 0:
                if sink is not None:
                    sink.close()
                shards.append(out / f"shard-{len(shards):06d}.tar")
                sink = wds.TarWriter(str(shards[-1]))
            record = tokens[item_id]
            sink.write(
                {"__key__": webdataset_key(item_id), "codes.npy": record.codes, "json": _sidecar(record)}
            )
    finally:
        if sink is not None:
            sink.close()
    _write_summary(out, tokens, "webdataset", len(ids), {"shards": len(shards), "shard_size": shard_size})
    return shards


def export_lhotse(store: str | Path, out: str | Path) -> Path:
    """Write the store as a lhotse CutSet with the codes as TemporalArrays; returns the cuts file."""
    lhotse = optional_import("lhotse", "lhotse", "the lhotse export")
    from lhotse.features.io import NumpyFilesWriter

    tokens, out = TokenStore(store), Path(out)
    _empty_target(out, Path(store))
    frame_shift = 1.0 / tokens.frame_rate
    ids = tokens.ids()
    cuts = []
    with NumpyFilesWriter(out / "codes") as writer:
        for item_id in progress_iter(ids, f"export {out.name}", len(ids), "items"):
            record = tokens[item_id]
            key = hashlib.sha1(item_id.encode("utf-8")).hexdigest()  # file names free of the id's characters
            codes = writer.store_array(key, np.ascontiguousarray(record.codes.T), frame_shift, temporal_dim=0)
            cuts.append(_cut(lhotse, record, codes))
    path = out / "cuts.jsonl.gz"
    lhotse.CutSet.from_cuts(cuts).to_file(path)
    _write_summary(out, tokens, "lhotse", len(ids), {"cuts": path.name, "codes_layout": "[frames, n_q]"})
    return path


def _cut(lhotse, record: TokenRecord, codes):
    """One MonoCut: the item's span of its source file (when that file is still there), its supervision
    and custom fields."""
    start = record.start or 0.0
    recording = None
    source = Path(record.path)
    if "::" not in record.path and source.is_file():
        try:
            recording = lhotse.Recording.from_file(
                source, recording_id=record.meta.get("recording_id", record.id)
            )
        except Exception:  # an unreadable source: the cut keeps its codes, without audio  # noqa: BLE001
            recording = None
    fields = {k: v for k, v in record.meta.items() if k in SUPERVISION_FIELDS and isinstance(v, str)}
    supervisions = []
    if record.text is not None or fields:
        supervisions.append(
            lhotse.SupervisionSegment(
                id=record.id,
                recording_id=recording.id if recording is not None else record.id,
                start=0.0,
                duration=record.duration,
                text=record.text,
                **fields,
            )
        )
    custom = {k: v for k, v in record.meta.items() if k not in fields and k != "recording_id"}
    custom.update({"codes": codes, "source_path": record.path, "source_sha256": record.sha256})
    return lhotse.MonoCut(
        id=record.id,
        start=start,
        duration=record.duration,
        channel=0,
        recording=recording,
        supervisions=supervisions,
        custom=custom,
    )


def _write_summary(out: Path, tokens: TokenStore, kind: str, items: int, extra: dict[str, Any]) -> None:
    meta = {**tokens.metadata, "export": kind, "items": items, "store": str(tokens.path), **extra}
    atomic_write_json(out / "codeclab_tokens.json", meta)
