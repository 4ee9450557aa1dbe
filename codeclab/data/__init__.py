"""Data: audio I/O and resampling, corpora and manifests, token stores, LLM vocabularies and datasets.

Submodules import their heavy dependencies lazily; the names below load on first access.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "AudioVocab": "codeclab.data.vocab",
    "TokenDataset": "codeclab.data.lm_dataset",
    "PackedTokenDataset": "codeclab.data.lm_dataset",
    "collate_tokens": "codeclab.data.lm_dataset",
    "TokenStore": "codeclab.data.token_store",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeclab.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
