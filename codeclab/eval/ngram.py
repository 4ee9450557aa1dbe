"""Count-based baselines for the token LM benchmark: how predictable are codes without a neural model?

Per codebook q, over each item's code stream codes[q] (one code per frame):

- unigram: P(c) = (n(c) + 1/2) / (N + K/2), counts over the training items (add-half smoothing, so no
  code has zero probability);
- bigram: P(c | previous frame's code p of the same codebook), Witten-Bell interpolated with the unigram:
  P(c | p) = (n(p, c) + T(p) P_uni(c)) / (n(p) + T(p)), T(p) the number of distinct codes seen after p.
  No parameter is tuned, so nothing is fitted on the held-out items. An item's first frame has no
  previous code and is scored by the unigram.

A transformer that does not beat the bigram in bits per second has learned little beyond code frequencies
and local repetition; the LM benchmark reports all three side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class CodebookStats:
    """Statistics of one codebook's training codes: entropy (bits) and usage (share of codes seen)."""

    entropy_bits: float
    usage: float


def unigram_probs(counts: np.ndarray) -> np.ndarray:
    """Add-half smoothed unigram probabilities [K] from counts [K]."""
    return (counts + 0.5) / (counts.sum() + 0.5 * len(counts))


def codebook_stats(counts: np.ndarray) -> CodebookStats:
    seen = counts[counts > 0] / max(counts.sum(), 1)
    return CodebookStats(float(-(seen * np.log2(seen)).sum()), float((counts > 0).mean()))


class BigramModel:
    """Unigram and Witten-Bell bigram of one codebook's codes (previous frame -> current frame)."""

    def __init__(self, codebook_size: int) -> None:
        self.k = codebook_size
        self.unigram_counts = np.zeros(codebook_size, dtype=np.int64)
        self.pairs: dict[int, np.ndarray] = {}  # previous code -> counts of the next code [K]

    def fit(self, streams: list[np.ndarray]) -> BigramModel:
        """Count codes and consecutive pairs over `streams` (each [frames] int)."""
        for codes in streams:
            codes = np.asarray(codes, dtype=np.int64)
            np.add.at(self.unigram_counts, codes, 1)
            for prev, cur in zip(codes[:-1].tolist(), codes[1:].tolist()):
                row = self.pairs.get(prev)
                if row is None:
                    row = self.pairs[prev] = np.zeros(self.k, dtype=np.int64)
                row[cur] += 1
        return self

    def bits(self, streams: list[np.ndarray]) -> tuple[float, float, int]:
        """(unigram bits, bigram bits, tokens) summed over every code of `streams`."""
        uni = unigram_probs(self.unigram_counts)
        log_uni = -np.log2(uni)
        uni_bits = bi_bits = 0.0
        tokens = 0
        for codes in streams:
            codes = np.asarray(codes, dtype=np.int64)
            if codes.size == 0:
                continue
            uni_bits += float(log_uni[codes].sum())
            bi_bits += float(log_uni[codes[0]])
            for prev, cur in zip(codes[:-1].tolist(), codes[1:].tolist()):
                row = self.pairs.get(prev)
                if row is None:
                    bi_bits += float(log_uni[cur])
                    continue
                total, types = int(row.sum()), int((row > 0).sum())
                bi_bits -= math.log2((row[cur] + types * uni[cur]) / (total + types))
            tokens += codes.size
        return uni_bits, bi_bits, tokens


def ngram_baselines(
    train: list[np.ndarray], held: list[np.ndarray], codebook_size: int
) -> dict[str, list[float] | list[dict]]:
    """Per codebook of items' codes [n_q, frames]: unigram and bigram bits per token on `held`, fitted on
    `train`, and the training codes' entropy and usage."""
    n_q = train[0].shape[0]
    uni, bi, stats = [], [], []
    for q in range(n_q):
        model = BigramModel(codebook_size).fit([codes[q] for codes in train])
        u, b, n = model.bits([codes[q] for codes in held])
        uni.append(u / max(n, 1))
        bi.append(b / max(n, 1))
        s = codebook_stats(model.unigram_counts)
        stats.append({"entropy_bits": s.entropy_bits, "usage": s.usage})
    return {"unigram_bits": uni, "bigram_bits": bi, "codebooks": stats}
