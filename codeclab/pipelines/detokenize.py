"""Token store -> audio files, with the codec recorded in the store (checked by weights sha256)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import torch

from codeclab.audio.io import AUDIO_EXTENSIONS
from codeclab.catalog.fingerprint import open_recorded_codec
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import Encoded
from codeclab.corpora.manifest import check_item_id
from codeclab.pipelines.clab_files import write_decoded
from codeclab.tokens.store import TokenStore


def output_path(out: Path, item_id: str) -> Path:
    """OUT/<id with its audio extension replaced by .wav>; ids that would escape OUT are rejected."""
    check_item_id(item_id, f"{out}: cannot name a file after the id")
    rel = PurePosixPath(item_id)
    if rel.suffix.lower() in AUDIO_EXTENSIONS:
        rel = rel.with_suffix("")
    return out.joinpath(*rel.parts).with_name(rel.name + ".wav")


def detokenize(
    store: str | Path,
    out: str | Path,
    ids: list[str] | None = None,
    codec_override: CodecRef | None = None,
    device: str = "cpu",
) -> list[Path]:
    """Decode `ids` (default: all) of `store` into OUT/<id>.wav; returns the written paths."""
    tokens = TokenStore(store)
    codec = open_recorded_codec(tokens.metadata["codec"], codec_override, device)
    out = Path(out)
    written = []
    for item_id in ids if ids is not None else tokens.ids():
        record = tokens[item_id]
        audio_length = int(round(record.duration * codec.sample_rate))
        encoded = Encoded(
            record.tensor()[None], torch.tensor([record.num_frames]), torch.tensor([audio_length])
        )
        path = output_path(out, item_id)
        write_decoded(codec, encoded, path)  # decode checks the codes against the codec
        written.append(path)
    return written
