"""One way for tests to build a token store: metadata for a made-up codec and a writer of items."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from codeclab.tokens.store import ShardWriter, TokenRecord, merge


def store_meta(n_q: int, codebook_size: int, frame_rate: float = 50.0, codec: str = "x") -> dict:
    """A store's metadata for codes [n_q, T] of `codebook_size` codes from a 16 kHz mono codec."""
    return {
        "codec": {"name": codec, "config_sha256": "c", "weights_sha256": "w"},
        "sample_rate": 16000,
        "channels": 1,
        "hop_length": round(16000 / frame_rate),
        "frame_rate": frame_rate,
        "n_q": n_q,
        "codebook_size": codebook_size,
        "codes_dtype": "int16",
    }


def write_store(path: str | Path, meta: dict, items: Iterable[np.ndarray | TokenRecord]) -> str:
    """Write `items` (codes [n_q, T], named u000, u001, ..., or whole records) as one merged store."""
    writer = ShardWriter(path, meta)
    for i, item in enumerate(items):
        if not isinstance(item, TokenRecord):
            seconds = item.shape[-1] / meta["frame_rate"]
            item = TokenRecord(f"u{i:03d}", item, f"/x/{i}.wav", "s", seconds, meta["sample_rate"])
        writer.add(item)
    writer.finish({})
    merge(path)
    return str(path)
