"""An item of a corpus (`AudioItem`): one piece of audio with an id, where it is, and its metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeclab.audio.io import AUDIO_EXTENSIONS
from codeclab.corpora.members import Member, read_member_bytes

# the columns an item is made of; every other column of an input is kept as the item's metadata
ITEM_COLUMNS = ("id", "path", "start", "end", "text")


class ManifestError(ValueError):
    """A manifest or input list is malformed; the message names the file (and line)."""


@dataclass(frozen=True, slots=True)
class AudioItem:
    id: str
    path: str
    start: float | None = None
    end: float | None = None
    text: str | None = None
    source: str = ""
    split: str | None = None  # e.g. "train" / "validation", from a manifest's `split` column
    language: str | None = None  # from a manifest's `language` column (e.g. WER runs on English items)
    member: Member | None = None  # the audio sits inside the container at `path` (tar member, dataset row)
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # extra columns

    @property
    def location(self) -> str:
        """Where the audio is: the file's path, or `CONTAINER::MEMBER` for audio inside a container."""
        return self.path if self.member is None else f"{self.path}::{self.member.describe()}"

    def describe(self) -> str:
        seg = (
            ""
            if self.start is None and self.end is None
            else f" [{self.start or 0:g}s-{'' if self.end is None else f'{self.end:g}s'}]"
        )
        return f"{self.location}{seg}"

    def read_bytes(self) -> bytes:
        """The audio file's bytes (OSError / MemberError name the file)."""
        return (
            Path(self.path).read_bytes() if self.member is None else read_member_bytes(self.path, self.member)
        )


def is_json_value(value: Any) -> bool:
    """True when `value` can be kept as metadata (JSON can hold it; arrays and features cannot)."""
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


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


def make_item(
    item_id: str,
    path: str,
    source: str,
    start: float | None = None,
    end: float | None = None,
    text: str | None = None,
    meta: dict[str, Any] | None = None,
    member: Member | None = None,
) -> AudioItem:
    """An item whose `split` and `language` come from its metadata (as every input format has them)."""
    meta = meta or {}
    split, language = meta.get("split"), meta.get("language")
    return AudioItem(
        item_id,
        path,
        start,
        end,
        text,
        source=source,
        split=None if split in (None, "") else str(split),
        language=None if language in (None, "") else str(language),
        member=member,
        meta=meta,
    )
