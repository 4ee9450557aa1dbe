"""Optional metric packages, imported on first use; a missing one is a stated reason, never a crash."""

from __future__ import annotations

import importlib
import sys
import types
from functools import cache

INSTALL = {
    "pesq": "pip install pesq",
    "pystoi": "pip install pystoi",
    "resemblyzer": "pip install --no-deps resemblyzer && pip install webrtcvad-wheels librosa scipy",
    "speechmos": "pip install speechmos onnxruntime",
    "onnxruntime": "pip install onnxruntime",
    "torchcrepe": "pip install --no-deps torchcrepe librosa resampy scipy tqdm",
    "pocketsphinx": "pip install pocketsphinx",
    "jiwer": "pip install jiwer",
    "whisper_normalizer": "pip install whisper-normalizer",
    "matplotlib": "pip install matplotlib",
}


class Unavailable(ImportError):
    """An optional package is missing or unusable; the message says what to install."""


@cache
def require(module: str):
    try:
        if module == "torchcrepe":
            stub = _make_torchaudio_optional()
            try:
                return importlib.import_module(module)
            finally:
                # torchcrepe keeps its own reference; other libraries must not find the stand-in later
                # (transformers probes torchaudio with importlib.util.find_spec)
                if stub is not None and sys.modules.get("torchaudio") is stub:
                    del sys.modules["torchaudio"]
        return importlib.import_module(module)
    except Exception as err:  # ImportError, or a package that fails while importing
        hint = INSTALL.get(module, f"pip install {module}")
        raise Unavailable(
            f"{module} is not usable ({type(err).__name__}: {str(err).splitlines()[0][:120]}); {hint}"
        ) from err


def available(module: str) -> tuple[bool, str]:
    try:
        require(module)
    except Unavailable as err:
        return False, str(err)
    return True, ""


def _make_torchaudio_optional() -> types.ModuleType | None:
    """torchcrepe imports torchaudio only to load files, which codeclab never asks of it (it predicts pitch
    from tensors). torchaudio's PyPI build does not import on some CPU torch builds (this project's
    machines among them); then a stand-in module takes its name, and any use of it raises a clear error."""
    try:
        importlib.import_module("torchaudio")
        return None
    except Exception:
        sys.modules.pop("torchaudio", None)

    stub = types.ModuleType("torchaudio")

    def _unusable(name: str):
        # AttributeError (not ImportError): hasattr() and inspect probe modules and expect it
        raise AttributeError(
            f"torchaudio.{name} is not available here (torchaudio does not import with this torch)"
        )

    stub.__getattr__ = _unusable  # type: ignore[method-assign]
    sys.modules["torchaudio"] = stub
    return stub
