"""`load_codec` and `list_codecs`: one way in for presets, saved directories and peer codecs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from codeclab.codecs.base import AudioCodec, RoundTripCodec
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
    if entry.family == "classic":
        raise ValueError(
            f"{entry.name} is a round-trip codec with a bitstream of its own and no tokens: load it with "
            f"load_roundtrip_codec({entry.name!r}) (the benchmarks take both kinds)"
        )
    return entry.factory(
        weights=None if weights is None else str(weights), random_init=random_init, device=device, **options
    )


def load_roundtrip_codec(name: str, **options: Any) -> RoundTripCodec:
    """A round-trip codec (Opus, Codec 2) by registry name, with its options (bitrate=, mode=, ...)."""
    entry = get_entry(name)
    if entry.family != "classic":
        raise ValueError(f"{name} is a token codec: load it with load_codec({name!r})")
    return entry.factory(**options)


def load_benchmark_codec(
    name_or_dir: str | Path, random_init: bool = False, **options: Any
) -> AudioCodec | RoundTripCodec:
    """What a benchmark compares: a token codec (`load_codec`) or a round-trip codec (`load_roundtrip_codec`)."""
    if not Path(name_or_dir).is_dir() and get_entry(str(name_or_dir)).family == "classic":
        return load_roundtrip_codec(str(name_or_dir), **options)
    if Path(name_or_dir).is_dir():
        return load_codec(name_or_dir, **options)
    return load_codec(name_or_dir, random_init=random_init, **options)


def save_pretrained(codec: AudioCodec, directory: str | Path, **options: Any) -> Path:
    """`codec.save_pretrained(directory, **options)`: write a codec directory `load_codec` reads back
    (codeclab codecs and peers alike). Returns the directory."""
    return codec.save_pretrained(directory, **options)


def list_codecs() -> list[str]:
    """Registered codec names, sorted."""
    return sorted(entries())


def codec_info(name: str) -> CodecEntry:
    """The registry entry of `name` (rates, codebooks, bitrates, licences) without building the codec."""
    return get_entry(name)
