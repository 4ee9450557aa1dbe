"""Code statistics of a store: counts per codebook (kept in each part's footer), entropy and usage."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from codeclab.tokens.store_layout import PART_COUNTS, part_columns, part_schema


def code_counts(items: Iterable[np.ndarray], n_q: int, k: int) -> np.ndarray:
    """How often each code occurs per codebook over items' codes ([n_q, frames] each) -> [n_q, k]."""
    counts = np.zeros((n_q, k), dtype=np.int64)
    for codes in items:
        for q in range(n_q):
            counts[q] += np.bincount(np.asarray(codes[q], dtype=np.int64), minlength=k)[:k]
    return counts


def sparse_counts(counts: np.ndarray) -> list[list[list[int]]]:
    return [[[int(c), int(row[c])] for c in np.flatnonzero(row)] for row in counts]


def _part_counts(part: Path, keep: list[int], total_rows: int, n_q: int, k: int) -> np.ndarray:
    """Code counts of the rows `keep` of a part: from its metadata when every row is kept, else (or for
    parts written before counts were recorded) from its codes."""
    stored = (part_schema(part).metadata or {}).get(PART_COUNTS.encode())
    if stored is not None and len(keep) == total_rows:
        counts = np.zeros((n_q, k), dtype=np.int64)
        try:
            for q, pairs in enumerate(json.loads(stored)[:n_q]):
                for code, count in pairs:
                    counts[q, code] += count
            return counts
        except (ValueError, TypeError, IndexError):
            pass  # unreadable counts: count the codes themselves
    codes = part_columns(part, ["codes"])["codes"]
    return code_counts((np.asarray(codes[row]) for row in keep), n_q, k)


def code_statistics(counts: np.ndarray, frame_rate: float, digits: int | None = 4) -> dict[str, Any]:
    """Per codebook entropy (bits per code) and usage (share of codes seen) of counts [n_q, k], and the
    entropy rate frame_rate x sum of entropies (what an ideal coder with these statistics would spend);
    rounded to `digits` (None: not rounded)."""

    def rounded(x: float) -> float:
        return x if digits is None else round(x, digits)

    per = []
    for row in counts:
        p = row[row > 0] / max(int(row.sum()), 1)
        per.append(
            {
                "entropy_bits": rounded(float(-(p * np.log2(p)).sum())),
                "usage": rounded(float((row > 0).mean())),
            }
        )
    return {
        "frames": int(counts[0].sum()) if len(counts) else 0,
        "per_codebook": per,
        "entropy_kbps": rounded(frame_rate * sum(c["entropy_bits"] for c in per) / 1000),
    }
