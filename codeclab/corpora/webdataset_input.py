"""WebDataset tar shards as corpus input: one item per sample key.

A sample is the group of members that share a key (WebDataset's own rule, `base_plus_ext`: the member's
path up to the first dot of its file name). Its audio member (the one extension among the audio formats)
is the item's audio; a `json` member is its metadata (`text` becomes the item's text, every other field
its metadata); a `txt` member is its text when the JSON has none. The item id is the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codeclab._optional import optional_import
from codeclab.audio.io import AUDIO_EXTENSIONS
from codeclab.corpora.items import AudioItem, ManifestError, check_item_id, make_item
from codeclab.corpora.members import Member, MemberError, TarEntry, read_member_bytes, tar_entries

AUDIO_EXTS = {ext.lstrip(".") for ext in AUDIO_EXTENSIONS}


def shard_paths(spec: str) -> list[str]:
    """The shard files of a pattern (`{000..009}` ranges and `{a,b}` lists, by `braceexpand`) or a path;
    each must exist."""
    braceexpand = optional_import("braceexpand", "webdataset", "reading WebDataset shards")
    paths = list(braceexpand.braceexpand(spec))
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ManifestError(f"{missing[0]}: no such tar shard{more} (from {spec})")
    return paths


def webdataset_items(spec: str) -> list[AudioItem]:
    """Items of the tar shards `spec` names (a path or a brace pattern)."""
    tariterators = optional_import("webdataset.tariterators", "webdataset", "reading WebDataset shards")
    items: list[AudioItem] = []
    for shard in shard_paths(spec):
        try:
            entries = tar_entries(shard)
        except MemberError as err:
            raise ManifestError(str(err)) from None
        samples: dict[str, dict[str, TarEntry]] = {}
        for entry in entries:
            key, ext = tariterators.base_plus_ext(entry.name)
            if key is None or Path(entry.name).name.startswith("."):
                continue
            samples.setdefault(key, {})[ext.lower()] = entry
        for key, members in samples.items():
            items.append(_sample_item(shard, key, members))
    return items


def _sample_item(shard: str, key: str, members: dict[str, TarEntry]) -> AudioItem:
    where = f"{shard}::{key}"
    check_item_id(key, where)
    meta: dict[str, Any] = {}
    text = None
    if "json" in members:
        try:
            sidecar = json.loads(read_member_bytes(shard, _member(members["json"])))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ManifestError(f"{where}.json: not a JSON object ({err})") from None
        if not isinstance(sidecar, dict):
            raise ManifestError(f"{where}.json: not a JSON object (got {type(sidecar).__name__})")
        text = sidecar.pop("text", None)
        meta = {k: v for k, v in sidecar.items() if k not in ("id", "path", "start", "end")}
    if text is None and "txt" in members:
        text = read_member_bytes(shard, _member(members["txt"])).decode("utf-8", errors="replace").strip()
    audio = [ext for ext in members if ext.rsplit(".", 1)[-1] in AUDIO_EXTS]
    if len(audio) == 1:
        member = _member(members[audio[0]])
    else:  # an error item: the run lists it in errors.jsonl with this reason
        found = ", ".join(sorted(members)) or "nothing"
        reason = (
            f"no audio member (the sample has {found})"
            if not audio
            else f"several audio members ({', '.join(sorted(audio))}); keep one per sample"
        )
        member = Member("refused", reason)
    return make_item(
        key,
        os.path.abspath(shard),
        source=shard,
        text=None if text in (None, "") else str(text),
        meta=meta,
        member=member,
    )


def _member(entry: TarEntry) -> Member:
    return Member("tar", entry.name, entry.offset, entry.size)
