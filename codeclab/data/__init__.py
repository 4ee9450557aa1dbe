"""Deprecated: `codeclab.data` was split into `audio`, `tokens`, `corpora`, `pipelines` and `train.dataset`
(see CHANGELOG.md). The names it exported still load from here, with a DeprecationWarning, for one release:
import them from `codeclab.tokens` instead."""

from __future__ import annotations

import warnings
from typing import Any

from codeclab.tokens import _LAZY as _MOVED  # the same names, from their new home

__all__ = list(_MOVED)


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(
            f"module 'codeclab.data' has no attribute {name!r}: codeclab.data was split into codeclab.audio, "
            "codeclab.tokens, codeclab.corpora, codeclab.pipelines and codeclab.train.dataset (CHANGELOG.md)"
        )
    warnings.warn(
        f"codeclab.data.{name} moved to {module}; import it from codeclab.tokens", DeprecationWarning, 2
    )
    import importlib

    return getattr(importlib.import_module(module), name)
