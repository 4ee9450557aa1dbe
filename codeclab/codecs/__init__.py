"""Codecs, the model floor: the `AudioCodec` contract, `NeuralCodec` and its config, its modules,
streaming, chunked coding and the weights-directory format. Naming and loading codecs is one floor up,
in `codeclab.catalog` (registry, presets, peers, `load_codec`)."""

from __future__ import annotations

from typing import Any

from codeclab.codecs.base import AudioCodec, Encoded, check_audio
from codeclab.codecs.config import CodecConfig, CodecOutput
from codeclab.codecs.neural import NeuralCodec

__all__ = ["AudioCodec", "Encoded", "check_audio", "NeuralCodec", "CodecConfig", "CodecOutput"]

# names this package exported before the catalogue floor; deprecated here (CHANGELOG, Unreleased)
_MOVED = {
    "load_codec": "codeclab.catalog.loading",
    "list_codecs": "codeclab.catalog.loading",
    "codec_info": "codeclab.catalog.loading",
    "save_pretrained": "codeclab.catalog.loading",
    "load_pretrained": "codeclab.catalog.loading",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'codeclab.codecs' has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(
        f"codeclab.codecs.{name} moved to {module}.{name} (also codeclab.{name}); the old name goes in the "
        "next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
