"""Entropy coding of codes: a per-codebook probability model and range coding by constriction.

    model = EntropyModel.fit([codes, ...], codebook_size=1024)   # codes [n_q, frames] of a corpus
    blob = model.encode(codes)          # codes [n_q', frames] (n_q' <= model.n_q) -> bytes
    codes = model.decode(blob, n_q', frames)

The model is the codes' frequencies per codebook, smoothed (count + 1/2) so no code has probability zero,
and quantized by constriction's leaky categorical model (every code keeps a nonzero probability). Each
codebook's codes are range coded with its own model, codebook after codebook (constriction's queue
`RangeEncoder`; no coder is written by hand). `sha256` names the model: a bitstream records it, and a
decoder with other tables refuses the data instead of decoding garbage. Models are saved as safetensors
(`counts` [n_q, K] int64) beside a codec's weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MODEL_FILE = "entropy.safetensors"


class EntropyError(ValueError):
    """Codes or data that this model cannot code, or a model file that is not one."""


def _constriction():
    try:
        import constriction
    except ImportError as err:
        raise ImportError("entropy coding needs constriction: pip install constriction") from err
    return constriction


class EntropyModel:
    """Per-codebook code frequencies -> probabilities, and range coding with them."""

    def __init__(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[0] < 1 or counts.shape[1] < 2 or bool((counts < 0).any()):
            raise EntropyError(f"counts must be non-negative, shape [n_q, K] with K >= 2, got {counts.shape}")
        self.counts = counts
        self.n_q, self.codebook_size = counts.shape
        self.probabilities = (counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 0.5 * self.codebook_size)
        self.sha256 = hashlib.sha256(
            np.asarray(counts.shape, dtype="<i8").tobytes() + counts.astype("<i8").tobytes()
        ).hexdigest()
        self._models: list | None = None

    @classmethod
    def fit(cls, codes: Iterable[np.ndarray], codebook_size: int) -> EntropyModel:
        """Count the codes of every item ([n_q, frames] each; all with the same n_q)."""
        counts: np.ndarray | None = None
        for item in codes:
            item = np.asarray(item, dtype=np.int64)
            if counts is None:
                counts = np.zeros((item.shape[0], codebook_size), dtype=np.int64)
            if item.shape[0] != counts.shape[0]:
                raise EntropyError(f"items have {item.shape[0]} and {counts.shape[0]} codebooks")
            for q in range(item.shape[0]):
                counts[q] += np.bincount(item[q], minlength=codebook_size)[:codebook_size]
        if counts is None:
            raise EntropyError("no codes to fit an entropy model on")
        return cls(counts)

    def bits(self, codes: np.ndarray) -> float:
        """The ideal code length of codes [n_q', F] under this model, in bits (what range coding approaches)."""
        codes = self._check(codes)
        return float(sum(-np.log2(self.probabilities[q][codes[q]]).sum() for q in range(codes.shape[0])))

    def _categoricals(self) -> list:
        if self._models is None:
            categorical = _constriction().stream.model.Categorical
            self._models = [categorical(p, perfect=False) for p in self.probabilities]
        return self._models

    def _check(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or not 1 <= codes.shape[0] <= self.n_q:
            raise EntropyError(f"codes must have shape [n_q <= {self.n_q}, frames], got {codes.shape}")
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise EntropyError(f"codes must lie in [0, {self.codebook_size})")
        return codes.astype(np.int64)

    def encode(self, codes: np.ndarray) -> bytes:
        """codes [n_q', F] -> range-coded bytes (a whole number of 32-bit words)."""
        codes = self._check(codes)
        encoder = _constriction().stream.queue.RangeEncoder()
        models = self._categoricals()
        for q in range(codes.shape[0]):
            encoder.encode(codes[q].astype(np.int32), models[q])
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
                out[q] = decoder.decode(models[q], frames)
        except Exception as err:  # noqa: BLE001 (constriction raises its own errors on invalid data)
            raise EntropyError(f"cannot range-decode the data ({err})") from err
        return out

    def save(self, directory: str | Path) -> Path:
        from safetensors.numpy import save

        from codeclab._files import atomic_write_bytes

        path = Path(directory) / MODEL_FILE
        blob = save({"counts": self.counts}, metadata={"format": "codeclab-entropy", "sha256": self.sha256})
        atomic_write_bytes(path, blob)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EntropyModel:
        from safetensors.numpy import load_file

        path = Path(path)
        if path.is_dir():
            path = path / MODEL_FILE
        try:
            counts = load_file(str(path))["counts"]
        except Exception as err:  # noqa: BLE001 (missing file, not safetensors, no counts)
            raise EntropyError(f"{path}: not an entropy model ({err})") from err
        return cls(counts)
