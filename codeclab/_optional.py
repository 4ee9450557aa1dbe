"""Optional dependencies, imported on first use with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def optional_import(module: str, extra: str, purpose: str) -> ModuleType:
    """`module`, or an ImportError naming `purpose` and the extra that installs it (both the release form
    `pip install 'codeclab[extra]'` and the checkout form `pip install -e '.[extra]'`)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the {module.split('.')[0]} package: pip install 'codeclab[{extra}]' "
            f"(from a checkout: pip install -e '.[{extra}]')"
        ) from err
