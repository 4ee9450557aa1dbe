"""`load_codec`: the one way in to a codec, by registry name, saved directory or `CodecRef`; and the
catalogue's listings (`list_codecs`, `codec_info`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

import torch

from codeclab.catalog.registry import CodecEntry, entries, get_entry
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.neural import NeuralCodec
from codeclab.codecs.pretrained import read_config
from codeclab.codecs.roundtrip import RoundTripCodec


@overload
def load_codec(
    name_or_dir: str | Path,
    weights: str | Path | None = None,
    random_init: bool = False,
    device: str | torch.device = "cpu",
    roundtrip: Literal[False] = False,
    **options: Any,
) -> AudioCodec: ...


@overload
def load_codec(
    name_or_dir: str | Path,
    weights: str | Path | None = None,
    random_init: bool = False,
    device: str | torch.device = "cpu",
    roundtrip: bool = ...,
    **options: Any,
) -> AudioCodec | RoundTripCodec: ...


def load_codec(
    name_or_dir: str | Path,
    weights: str | Path | None = None,
    random_init: bool = False,
    device: str | torch.device = "cpu",
    roundtrip: bool = False,
    **options: Any,
) -> AudioCodec | RoundTripCodec:
    """A codec by registry name ("codeclab-16k-speech", "encodec-24khz", ...) or by a directory written by
    `save_pretrained` (a codeclab codec or a saved peer). The one dispatcher: `CodecRef.load`, the
    deprecated `AudioCodec.from_pretrained` and the benchmarks all come here.

    weights: where the pretrained weights are (a directory; a hub id for peers). random_init: build an
    untrained codec instead (for tests and speed runs; reported as such). Without either, a codec whose
    weights are not available raises a `ValueError` saying what to pass. roundtrip: also hand out a
    round-trip codec (Opus, Codec 2: a bitstream of its own and no tokens; benchmarks take both kinds),
    which otherwise raises ValueError.
    """
    path = Path(name_or_dir)
    if path.is_dir():
        if weights is not None or random_init:
            raise ValueError(
                f"{path} is a codec directory; weights= and random_init= apply to registry names"
            )
        return load_directory(path, device=device)
    entry = get_entry(str(name_or_dir))
    if entry.family == "classic":
        if not roundtrip:
            raise ValueError(
                f"{entry.name} is a round-trip codec with a bitstream of its own and no tokens: load it "
                f"with load_codec({entry.name!r}, roundtrip=True) (the benchmarks take both kinds)"
            )
        return entry.factory(**options)
    return entry.factory(
        weights=None if weights is None else str(weights), random_init=random_init, device=device, **options
    )


def load_directory(directory: str | Path, device: str | torch.device = "cpu") -> AudioCodec:
    """The codec a directory written by `save_pretrained` holds: a `NeuralCodec`, or a peer saved by its
    own `save_pretrained` (config.json kind "peer"), its weights' sha256 checked first."""
    directory = Path(directory)
    meta = read_config(directory)
    if meta.get("kind") == "peer":  # the peer's own loader (transformers peers: load_saved_peer)
        name = meta.get("name")
        entry = entries().get(name) if isinstance(name, str) else None
        loader = None if entry is None else entry.extra.get("load_saved")
        if loader is None:
            from codeclab.catalog.peers.hf import load_saved_peer

            loader = load_saved_peer
        return loader(directory, meta, device=device)
    return NeuralCodec.from_pretrained(directory, device=device)


def load_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> AudioCodec:
    """`load_directory` under its earlier name (kept: scripts and docs use it)."""
    return load_directory(directory, device=device)


def load_roundtrip_codec(name: str, **options: Any) -> RoundTripCodec:
    """`load_codec(name, roundtrip=True, **options)`, checked to be a round-trip codec (Opus, Codec 2)."""
    if get_entry(name).family != "classic":
        raise ValueError(f"{name} is a token codec: load it with load_codec({name!r})")
    codec = load_codec(name, roundtrip=True, **options)
    assert isinstance(codec, RoundTripCodec)
    return codec


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
