"""Optional dependencies, imported on first use with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def install_hint(extra: str) -> str:
    """How to install an extra, as a release and from a checkout."""
    return f"pip install 'codeclab[{extra}]' (from a checkout: pip install -e '.[{extra}]')"


def optional_import(module: str, extra: str, purpose: str) -> ModuleType:
    """`module`, or an ImportError naming `purpose` and the extra that installs it (both the release form
    `pip install 'codeclab[extra]'` and the checkout form `pip install -e '.[extra]'`)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the {module.split('.')[0]} package: {install_hint(extra)}"
        ) from err
