"""lhotse manifests and Shar directories as corpus input, read with lhotse itself.

- A RecordingSet: one item per recording (the whole file).
- A CutSet: one item per cut: the recording's file from the cut's offset for its duration (a cut covering
  the whole recording reads the whole file, so its codes equal the file's). The cut's supervisions give
  the text (joined in order), speaker and language; its custom fields go into the item's metadata.
- A Shar directory (`cuts.NNNNNN.jsonl.gz` + `recording.NNNNNN.tar`): each cut's audio is its member of
  the recording tar of the same shard number; cuts and members are paired in order, as lhotse pairs them.

Cuts whose audio codeclab does not read (a URL or command source, a mixed cut, one channel of a
multi-channel recording) become error items with the reason: the run lists them in `errors.jsonl`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from codeclab._optional import optional_import
from codeclab.corpora.items import AudioItem, ManifestError, check_item_id, is_json_value, make_item
from codeclab.corpora.members import Member, MemberError, tar_entries

SHAR_META_EXTS = (".json", ".nometa")


def _lhotse(purpose: str):
    return optional_import("lhotse", "lhotse", purpose)


def refuse_supervisions(path: Path) -> ManifestError:
    return ManifestError(
        f"{path}: a lhotse SupervisionSet names no audio; give the recordings or cuts manifest (e.g. "
        "CutSet.from_manifests(recordings, supervisions).to_file('cuts.jsonl.gz'))"
    )


def lhotse_manifest_items(path: Path, kind: str) -> list[AudioItem]:
    """Items of a lhotse RecordingSet or CutSet manifest (`kind` from `formats.lhotse_kind`)."""
    lhotse = _lhotse("reading lhotse manifests")
    if kind == "supervisions":
        raise refuse_supervisions(path)
    try:
        manifest = lhotse.load_manifest_lazy(path)
    except Exception as err:  # lhotse raises ValueError, KeyError, TypeError on malformed rows
        raise ManifestError(
            f"{path}: lhotse cannot read this manifest ({type(err).__name__}: {err})"
        ) from None
    items = []
    for row, entry in enumerate(manifest, 1):
        where = f"{path}:{row}"
        if kind == "recordings":
            items.append(_recording_item(entry, where, str(path)))
        else:
            items.append(_cut_item(entry, where, str(path)))
    return items


def _file_source(recording, cut_channels: list[int] | None) -> tuple[str, str | None]:
    """(absolute file path, None) of a recording codeclab can read, or ("", reason) when it cannot."""
    sources = recording.sources
    if len(sources) != 1:
        return (
            "",
            f"recording {recording.id} has {len(sources)} sources (one per channel); join them into one file",
        )
    source = sources[0]
    if source.type != "file":
        return "", f"recording {recording.id} is a {source.type!r} source; codeclab reads 'file' sources"
    if cut_channels is not None and sorted(cut_channels) != sorted(recording.channel_ids):
        return "", (
            f"the cut takes channel(s) {cut_channels} of the {recording.num_channels}-channel recording "
            f"{recording.id}; codeclab mixes all of a file's channels (docs/tokenization.md)"
        )
    return os.path.abspath(source.source), None


def _recording_item(recording, where: str, source: str) -> AudioItem:
    check_item_id(recording.id, where)
    path, reason = _file_source(recording, None)
    return make_item(
        recording.id,
        path or source,
        source=source,
        member=Member("refused", reason) if reason else None,
        meta={"recording_id": recording.id},
    )


def _supervision_fields(cut) -> tuple[str | None, dict[str, Any]]:
    """(text, metadata) from a cut's supervisions (text joined in order; speaker/language when one) and
    its custom fields (JSON values only)."""
    sups = sorted(cut.supervisions, key=lambda s: s.start)
    texts = [s.text for s in sups if s.text]
    meta: dict[str, Any] = {}
    for field in ("speaker", "language", "gender"):
        values = {getattr(s, field) for s in sups if getattr(s, field, None)}
        if len(values) == 1:
            meta[field] = values.pop()
        elif values:
            meta[field] = sorted(values)
    for key, value in (cut.custom or {}).items():
        if is_json_value(value):  # arrays and features stay with lhotse
            meta[key] = value
    return (" ".join(texts) or None), meta


def _cut_item(cut, where: str, source: str) -> AudioItem:
    check_item_id(cut.id, where)
    text, meta = _supervision_fields(cut) if hasattr(cut, "supervisions") else (None, {})
    recording = getattr(cut, "recording", None)
    reason = None
    if type(cut).__name__ != "MonoCut" or recording is None:
        reason = f"a {type(cut).__name__} without one recording of its own is not read by codeclab"
        path = source
    else:
        meta["recording_id"] = recording.id
        channels = cut.channel if isinstance(cut.channel, list) else [cut.channel]
        path, reason = _file_source(recording, channels)
        path = path or source
    start, end = None, None
    if reason is None and not _covers_recording(cut, recording):
        start, end = float(cut.start), float(cut.start + cut.duration)
    return make_item(
        cut.id,
        path,
        source=source,
        start=start,
        end=end,
        text=text,
        meta=meta,
        member=Member("refused", reason) if reason else None,
    )


def _covers_recording(cut, recording) -> bool:
    """True when the cut spans its whole recording (to within half a sample)."""
    half = 0.5 / recording.sampling_rate
    return abs(cut.start) < half and abs(cut.duration - recording.duration) < half


def shar_items(directory: Path) -> list[AudioItem]:
    """Items of a lhotse Shar directory; its cuts are read by lhotse, its audio members located by tarfile."""
    lhotse = _lhotse("reading lhotse Shar directories")
    items = []
    cut_files = sorted(directory.glob("cuts.*.jsonl*"))
    for cut_file in cut_files:
        number = re.search(r"cuts\.(\d+)\.jsonl", cut_file.name)
        tar = directory / f"recording.{number.group(1)}.tar" if number else None
        if tar is None or not tar.is_file():
            raise ManifestError(f"{cut_file}: no recording tar beside it ({tar}); the Shar has no audio")
        try:
            entries = [e for e in tar_entries(tar) if not e.name.endswith(SHAR_META_EXTS)]
            cuts = list(lhotse.CutSet.from_jsonl_lazy(cut_file))
        except MemberError as err:
            raise ManifestError(str(err)) from None
        except Exception as err:  # lhotse's errors on malformed rows
            raise ManifestError(
                f"{cut_file}: lhotse cannot read these cuts ({type(err).__name__}: {err})"
            ) from None
        if len(entries) != len(cuts):
            raise ManifestError(
                f"{tar}: {len(entries)} audio members for the {len(cuts)} cuts of {cut_file.name}"
            )
        for row, (cut, entry) in enumerate(zip(cuts, entries), 1):
            items.append(_shar_item(cut, entry, tar, f"{cut_file}:{row}"))
    return items


def _shar_item(cut, entry, tar: Path, where: str) -> AudioItem:
    check_item_id(cut.id, where)
    text, meta = _supervision_fields(cut)
    if cut.recording is not None:
        meta["recording_id"] = cut.recording.id
    if entry.name.endswith(".nodata"):
        member = Member("refused", f"the Shar holds no audio for cut {cut.id}")
    elif not entry.name.startswith(f"{cut.id}."):
        raise ManifestError(
            f"{where}: cut {cut.id} is paired with member {entry.name} of {tar}: the Shar is out of order"
        )
    else:
        member = Member("tar", entry.name, entry.offset, entry.size)
    return make_item(cut.id, os.path.abspath(tar), source=str(tar), text=text, meta=meta, member=member)
