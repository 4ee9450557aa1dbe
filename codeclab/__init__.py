"""codeclab: neural audio codecs and discrete audio tokenizers.

The public surface is imported lazily (PEP 562), so `import codeclab` stays cheap and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codeclab._version import __version__

_LAZY = {
    "load_codec": "codeclab.catalog.loading",
    "load_roundtrip_codec": "codeclab.catalog.loading",
    "list_codecs": "codeclab.catalog.loading",
    "save_pretrained": "codeclab.catalog.loading",
    "codec_info": "codeclab.catalog.loading",
    "AudioCodec": "codeclab.codecs.base",
    "Encoded": "codeclab.codecs.base",
    "RoundTripCodec": "codeclab.codecs.roundtrip",
    "SampleRateMismatch": "codeclab.codecs.base",
    "UnsupportedDtype": "codeclab.codecs.base",
    "CodecRef": "codeclab.catalog.ref",
    "StreamingUnsupported": "codeclab.codecs.streaming",
    "TokenStore": "codeclab.tokens.store",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from codeclab.catalog.loading import (  # noqa: F401
        codec_info,
        list_codecs,
        load_codec,
        load_roundtrip_codec,
        save_pretrained,
    )
    from codeclab.catalog.ref import CodecRef  # noqa: F401
    from codeclab.codecs.base import (  # noqa: F401
        AudioCodec,
        Encoded,
        SampleRateMismatch,
        UnsupportedDtype,
    )
    from codeclab.codecs.roundtrip import RoundTripCodec  # noqa: F401
    from codeclab.codecs.streaming import StreamingUnsupported  # noqa: F401
    from codeclab.tokens.store import TokenStore  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeclab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
