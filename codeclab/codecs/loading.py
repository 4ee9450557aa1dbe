"""`load_codec` and `list_codecs`: one way in for presets, saved directories and peer codecs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from codeclab.codecs.base import AudioCodec
from codeclab.codecs.registry import CodecEntry, entries, get_entry


def load_codec(
    name_or_dir: str | Path,
    weights: str | Path | None = None,
    random_init: bool = False,
    device: str | torch.device = "cpu",
    **options: Any,
) -> AudioCodec:
    """A codec by registry name ("codeclab-16k-speech", "encodec-24khz", ...) or by a directory written
    by `save_pretrained`.

    weights: where the pretrained weights are (a directory; a hub id for peers). random_init: build an
    untrained codec instead (for tests and speed runs; reported as such). Without either, a codec whose
    weights are not available raises a `ValueError` saying what to pass.
    """
    path = Path(name_or_dir)
    if path.is_dir():
        from codeclab.codecs.pretrained import load_pretrained

        if weights is not None or random_init:
            raise ValueError(
                f"{path} is a codec directory; weights= and random_init= apply to registry names"
            )
        return load_pretrained(path, device=device)
    entry = get_entry(str(name_or_dir))
    return entry.factory(
        weights=None if weights is None else str(weights), random_init=random_init, device=device, **options
    )


def list_codecs() -> list[str]:
    """Registered codec names, sorted."""
    return sorted(entries())


def codec_info(name: str) -> CodecEntry:
    """The registry entry of `name` (rates, codebooks, bitrates, licences) without building the codec."""
    return get_entry(name)
