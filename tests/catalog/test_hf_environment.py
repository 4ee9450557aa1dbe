"""The transformers adapters name an installed-but-broken torchaudio instead of failing inside a model import."""

import importlib.machinery
import importlib.util
import sys
import types

import pytest

from codeclab.catalog.peers import hf


def test_a_broken_torchaudio_is_named(monkeypatch):
    # a module that exists (find_spec sees it) but raises on import, as a torchaudio built for another torch does
    broken = types.ModuleType("torchaudio")
    broken.__spec__ = importlib.machinery.ModuleSpec("torchaudio", loader=None)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: broken.__spec__ if name == "torchaudio" else None
    )
    monkeypatch.setitem(sys.modules, "torchaudio", None)  # `import torchaudio` raises ImportError
    with pytest.raises(ImportError, match="torchaudio is installed but does not import"):
        hf._check_torchaudio()


def test_no_torchaudio_is_fine(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    hf._check_torchaudio()
