"""Named codecs: our presets and the peer adapters, one registry keyed by name.

Each entry records what a user needs to choose a codec (rates, codebooks, bitrate, licences, where the
weights come from) and a factory that builds it. Modules that define codecs register them with the
`register_codec` decorator; the registry imports those modules on first use, never at `import codeclab`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from codeclab.codecs.base import AudioCodec

# Modules whose import registers codecs, loaded lazily the first time the registry is read.
_PROVIDERS = [
    "codeclab.catalog.presets",
    "codeclab.catalog.peers.transformers_codecs",
    "codeclab.catalog.peers.w2v_bert_codecs",
    "codeclab.catalog.peers.classic",
    "codeclab.catalog.peers.snac_codec",
]


@dataclass
class CodecEntry:
    """What the registry knows of a codec without building it.

    factory(weights, random_init, device, **options) -> AudioCodec. weights: the default location of
    pretrained weights (a hub id or path), None when none are released.
    """

    name: str
    family: str
    description: str
    sample_rate: int
    channels: int
    frame_rate: float
    num_codebooks: int
    codebook_size: int
    source: str
    code_licence: str
    weights_licence: str
    factory: Callable[..., AudioCodec]
    weights: str | None = None
    causal: bool | None = None
    bitrate_note: str = ""
    extra: dict = field(default_factory=dict)

    def bitrates(self) -> list[float]:
        """Nominal bits per second for n_q = 1..num_codebooks (empty for classic codecs: see bitrate_note)."""
        from math import log2

        if self.num_codebooks == 0:
            return []
        return [n * log2(self.codebook_size) * self.frame_rate for n in range(1, self.num_codebooks + 1)]


_REGISTRY: dict[str, CodecEntry] = {}
_loaded = False


def register_codec(**fields) -> Callable[[Callable[..., AudioCodec]], Callable[..., AudioCodec]]:
    """Decorator: register the decorated factory under `fields["name"]` with the given entry fields."""

    def wrap(factory: Callable[..., AudioCodec]) -> Callable[..., AudioCodec]:
        entry = CodecEntry(factory=factory, **fields)
        if entry.name in _REGISTRY:
            raise ValueError(f"codec {entry.name!r} is already registered")
        _REGISTRY[entry.name] = entry
        return factory

    return wrap


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _PROVIDERS:
            importlib.import_module(module)


def entries() -> dict[str, CodecEntry]:
    _ensure_loaded()
    return dict(_REGISTRY)


def get_entry(name: str) -> CodecEntry:
    _ensure_loaded()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(str(name), sorted(_REGISTRY), n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(
            f"unknown codec {name!r}; {hint}known codecs: {', '.join(sorted(_REGISTRY))} "
            "(or pass a directory written by save_pretrained)"
        )
    return _REGISTRY[name]
