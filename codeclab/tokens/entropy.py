"""Entropy coding of codes: a per-codebook probability model and range coding by constriction.

    model = EntropyModel.fit([codes, ...], codebook_size=1024)   # codes [n_q, frames] of a corpus
    blob = model.encode(codes)          # codes [n_q', frames] (n_q' <= model.n_q) -> bytes
    codes = model.decode(blob, n_q', frames)

Per codebook, the codes' frequencies, smoothed (count + 1/2) so no code has probability zero. For the
codebooks in `context` (by default the first two, whose codes follow the previous frame's closely in a
distilled codec: `benchmarks/entropy_context.py`), a code after the first of a block is coded with
P(code | previous frame's code of that codebook), a Witten-Bell bigram interpolated with the unigram:
P(c | p) = (n(p, c) + T(p) P(c)) / (n(p) + T(p)), T(p) the number of distinct codes seen after p (a
previous code never seen gives the unigram). The context never crosses a block: each `encode` call (a
`.clab` packet) decodes on its own. Probabilities go to constriction's leaky categorical model (every code
keeps a nonzero probability) and its queue `RangeEncoder`, codebook after codebook; no coder is written
by hand. `sha256` names the tables: a bitstream records it, and a decoder with other tables refuses the
data instead of decoding garbage. Saved as safetensors (`counts` [n_q, K] int64; `pairs_Q` [P, 3] int32
rows (previous, code, count) per context codebook Q) beside a codec's weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from codeclab._checks import check_codes

MODEL_FILE = "entropy.safetensors"
DEFAULT_CONTEXT = (0, 1)  # codebooks coded with the previous frame's code as context


class EntropyError(ValueError):
    """Codes or data that this model cannot code, or a model file that is not one."""


def _constriction():
    try:
        import constriction
    except ImportError as err:
        raise ImportError("entropy coding needs constriction: pip install constriction") from err
    return constriction


class _Bigram:
    """Pair counts of one codebook in compressed rows: for previous code p, the codes seen after it
    (`codes[start[p]:start[p + 1]]`) and their counts."""

    def __init__(self, pairs: np.ndarray, unigram: np.ndarray) -> None:
        """`pairs` [P, 3] (previous, code, count), sorted by previous code, then code."""
        k = unigram.size
        self.start = np.searchsorted(pairs[:, 0], np.arange(k + 1))
        self.codes, self.counts = pairs[:, 1], pairs[:, 2].astype(np.float64)
        self.total = np.bincount(pairs[:, 0], weights=self.counts, minlength=k).astype(np.float64)
        self.types = np.diff(self.start).astype(np.float64)
        self.unigram = unigram
        self._rows: dict[int, np.ndarray] = {}

    def row(self, p: int) -> np.ndarray:
        """P(. | p) [1, K], cached (a decoder asks for the same previous codes again and again)."""
        cached = self._rows.get(p)
        if cached is None:
            types, total = self.types[p], self.total[p]
            cached = self.unigram.copy()
            if types:
                cached *= types / (total + types)
                lo, hi = self.start[p], self.start[p + 1]
                cached[self.codes[lo:hi]] += self.counts[lo:hi] / (total + types)
            cached = self._rows[p] = cached[None]
        return cached

    def probabilities(self, previous: np.ndarray) -> np.ndarray:
        """P(. | p) for each p in `previous` [n] -> [n, K]."""
        return (
            np.concatenate([self.row(p) for p in previous.tolist()])
            if len(previous)
            else np.zeros((0, self.unigram.size))
        )


class EntropyModel:
    """Per-codebook code frequencies (and previous-frame pairs for the context codebooks) ->
    probabilities, and range coding with them."""

    def __init__(self, counts: np.ndarray, pairs: dict[int, np.ndarray] | None = None) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[0] < 1 or counts.shape[1] < 2 or bool((counts < 0).any()):
            raise EntropyError(f"counts must be non-negative, shape [n_q, K] with K >= 2, got {counts.shape}")
        self.counts = counts
        self.n_q, self.codebook_size = counts.shape
        self.probabilities = (counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 0.5 * self.codebook_size)
        self.pairs: dict[int, np.ndarray] = {}
        digest = hashlib.sha256(
            np.asarray(counts.shape, dtype="<i8").tobytes() + counts.astype("<i8").tobytes()
        )
        pairs = pairs or {}
        for q in sorted(int(q) for q in pairs):
            p = np.asarray(pairs[q], dtype=np.int64).reshape(-1, 3)
            key = p[:, 0] * self.codebook_size + p[:, 1]
            order = np.argsort(key, kind="stable")
            p, key = p[order], key[order]  # sorted by previous code, then code
            bad = (
                not 0 <= q < self.n_q
                or bool((p[:, :2] < 0).any() | (p[:, :2] >= self.codebook_size).any() | (p[:, 2] <= 0).any())
                or bool((np.diff(key) == 0).any())
            )
            if bad:
                raise EntropyError(f"pair counts of codebook {q} are not (previous, code, count > 0) rows")
            self.pairs[q] = p
            digest.update(np.asarray([q, len(p)], dtype="<i8").tobytes())
            digest.update(p.astype("<i8").tobytes())
        self.sha256 = digest.hexdigest()
        self._bigrams = {q: _Bigram(p, self.probabilities[q]) for q, p in self.pairs.items()}
        self._models: list | None = None

    @property
    def context(self) -> tuple[int, ...]:
        """The codebooks coded with the previous frame's code as context."""
        return tuple(sorted(self.pairs))

    @classmethod
    def fit(
        cls, codes: Iterable[np.ndarray], codebook_size: int, context: Iterable[int] = DEFAULT_CONTEXT
    ) -> EntropyModel:
        """Count the codes of every item ([n_q, frames] each; all with the same n_q), and the pairs of
        consecutive codes of the `context` codebooks (those the items have)."""
        counts: np.ndarray | None = None
        pair_counts: dict[int, np.ndarray] = {}
        for item in codes:
            item = np.asarray(item, dtype=np.int64)
            if counts is None:
                counts = np.zeros((item.shape[0], codebook_size), dtype=np.int64)
                pair_counts = {
                    q: np.zeros(codebook_size * codebook_size, np.int64) for q in context if q < item.shape[0]
                }
            if item.shape[0] != counts.shape[0]:
                raise EntropyError(f"items have {item.shape[0]} and {counts.shape[0]} codebooks")
            for q in range(item.shape[0]):
                counts[q] += np.bincount(item[q], minlength=codebook_size)[:codebook_size]
            for q, flat in pair_counts.items():
                flat += np.bincount(item[q, :-1] * codebook_size + item[q, 1:], minlength=flat.size)
        if counts is None:
            raise EntropyError("no codes to fit an entropy model on")
        pairs = {}
        for q, flat in pair_counts.items():
            seen = np.flatnonzero(flat)
            pairs[q] = np.stack([seen // codebook_size, seen % codebook_size, flat[seen]], axis=1)
        return cls(counts, pairs)

    def bits(self, codes: np.ndarray) -> float:
        """The ideal code length of codes [n_q', F] under this model as `encode` uses it, in bits (what
        range coding approaches)."""
        codes = self._check(codes)
        total = 0.0
        for q in range(codes.shape[0]):
            if q in self._bigrams and codes.shape[1] > 1:
                rows = self._bigrams[q].probabilities(codes[q, :-1])
                total -= np.log2(self.probabilities[q][codes[q, 0]])
                total -= np.log2(rows[np.arange(len(rows)), codes[q, 1:]]).sum()
            else:
                total -= np.log2(self.probabilities[q][codes[q]]).sum()
        return float(total)

    def _categoricals(self) -> list:
        if self._models is None:
            categorical = _constriction().stream.model.Categorical
            self._models = [categorical(p, perfect=False) for p in self.probabilities]
            self._family = categorical(perfect=False)
        return self._models

    def _check(self, codes: np.ndarray) -> np.ndarray:
        return check_codes(codes, self.codebook_size, max_n_q=self.n_q, error=EntropyError).astype(np.int64)

    def encode(self, codes: np.ndarray) -> bytes:
        """codes [n_q', F] -> range-coded bytes (a whole number of 32-bit words)."""
        codes = self._check(codes)
        encoder = _constriction().stream.queue.RangeEncoder()
        models = self._categoricals()
        for q in range(codes.shape[0]):
            symbols = codes[q].astype(np.int32)
            if q in self._bigrams and codes.shape[1] > 1:
                encoder.encode(symbols[:1], models[q])
                rows = self._bigrams[q].probabilities(codes[q, :-1])
                encoder.encode(symbols[1:], self._family, rows.astype(np.float64))
            else:
                encoder.encode(symbols, models[q])
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes, n_q: int, frames: int) -> np.ndarray:
        """Bytes from `encode` -> codes [n_q, frames]. Damaged data raises EntropyError or decodes to other
        codes (a container's CRC catches those); it never reads past `data`."""
        if not 1 <= n_q <= self.n_q or frames < 0:
            raise EntropyError(
                f"cannot decode {n_q} codebooks x {frames} frames with a {self.n_q}-codebook model"
            )
        if len(data) % 4:
            raise EntropyError(f"range-coded data is whole 32-bit words; got {len(data)} bytes")
        decoder = _constriction().stream.queue.RangeDecoder(
            np.frombuffer(data, dtype="<u4").astype(np.uint32)
        )
        models = self._categoricals()
        out = np.zeros((n_q, frames), dtype=np.int64)
        try:
            for q in range(n_q):
                if q in self._bigrams and frames > 1:
                    out[q, 0] = decoder.decode(models[q], 1)[0]
                    bigram = self._bigrams[q]
                    for t in range(1, frames):
                        out[q, t] = decoder.decode(self._family, bigram.row(int(out[q, t - 1])))[0]
                else:
                    out[q] = decoder.decode(models[q], frames)
        except Exception as err:  # noqa: BLE001 (constriction raises its own errors on invalid data)
            raise EntropyError(f"cannot range-decode the data ({err})") from err
        return out

    def save(self, directory: str | Path) -> Path:
        from safetensors.numpy import save

        from codeclab._files import atomic_write_bytes

        path = Path(directory) / MODEL_FILE
        tensors = {"counts": self.counts, **{f"pairs_{q}": p.astype(np.int32) for q, p in self.pairs.items()}}
        blob = save(tensors, metadata={"format": "codeclab-entropy", "sha256": self.sha256})
        atomic_write_bytes(path, blob)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EntropyModel:
        from safetensors.numpy import load_file

        path = Path(path)
        if path.is_dir():
            path = path / MODEL_FILE
        try:
            tensors = load_file(str(path))
            counts = tensors.pop("counts")
            pairs = {int(name.removeprefix("pairs_")): value for name, value in tensors.items()}
        except Exception as err:  # noqa: BLE001 (missing file, not safetensors, no counts, bad names)
            raise EntropyError(f"{path}: not an entropy model ({err})") from err
        return cls(counts, pairs)
