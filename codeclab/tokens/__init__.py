"""Tokens: codes without codecs. The Parquet token store, the `.clab` bitstream format, vocabularies and
codebook patterns, LM datasets and exports. Knows codes, never codecs.

Submodules import their heavy dependencies lazily; the names below load on first access.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "AudioVocab": "codeclab.tokens.vocab",
    "TokenDataset": "codeclab.tokens.lm_dataset",
    "PackedTokenDataset": "codeclab.tokens.lm_dataset",
    "collate_tokens": "codeclab.tokens.lm_dataset",
    "TokenStore": "codeclab.tokens.store",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeclab.tokens' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
