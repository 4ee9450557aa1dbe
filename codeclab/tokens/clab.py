"""The `.clab` bitstream: one encoded audio item in a compact, checked file.

Layout (all integers little-endian):

    offset   size  field
    0        4     magic b"CLAB"
    4        1     format version (1)
    5        4     header length H (u32)
    9        H     header: UTF-8 JSON object (codec, sample_rate, channels, hop_length, n_q, codebook_size,
                   bits, frames, audio_length)
    9+H      P     codes, bit-packed: `bits` = ceil(log2(codebook_size)) bits per code, most significant bit
                   first, frame-major (frame 0 codebooks 0..n_q-1, then frame 1, ...); P = ceil(n_q*frames*bits/8)
    9+H+P    4     CRC32 of every byte before it

Anything else (foreign, truncated or corrupt files, inconsistent headers, codes out of range) raises
`ClabFormatError`, never another exception and never garbage codes.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"CLAB"
VERSION = 1
_PREFIX = struct.Struct("<4sBI")
_CRC = struct.Struct("<I")
MAX_HEADER = 1 << 20


class ClabFormatError(ValueError):
    """A .clab file is foreign, truncated, corrupt or inconsistent; the message names the file."""


def bits_per_code(codebook_size: int) -> int:
    return max(1, math.ceil(math.log2(codebook_size)))


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """codes [n_q, F] (non-negative, < 2**bits) -> bytes, frame-major, MSB first."""
    flat = np.ascontiguousarray(np.asarray(codes, dtype=np.int64).T).reshape(-1).astype(np.uint64)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bitmat = ((flat[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bitmat.reshape(-1)).tobytes()


def unpack_codes(payload: bytes, n_q: int, frames: int, bits: int) -> np.ndarray:
    """Inverse of `pack_codes` -> [n_q, frames] int64."""
    count = n_q * frames
    bitarr = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: count * bits].reshape(count, bits)
    weights = 1 << np.arange(bits - 1, -1, -1, dtype=np.int64)
    values = bitarr.astype(np.int64) @ weights
    return np.ascontiguousarray(values.reshape(frames, n_q).T)


@dataclass
class ClabFile:
    """A decoded .clab file: header fields and codes [n_q, frames] int64."""

    header: dict[str, Any]
    codes: np.ndarray

    @property
    def audio_length(self) -> int:
        return int(self.header["audio_length"])

    @property
    def sample_rate(self) -> int:
        return int(self.header["sample_rate"])


def to_bytes(codes: np.ndarray, header: dict[str, Any]) -> bytes:
    """Serialise codes [n_q, F] with `header` (which must give codebook_size and audio_length)."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must have shape [n_q, frames], got {codes.shape}")
    k = int(header["codebook_size"])
    if codes.size and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"codes must lie in [0, {k})")
    bits = bits_per_code(k)
    full = {**header, "n_q": int(codes.shape[0]), "frames": int(codes.shape[1]), "bits": bits}
    head = json.dumps(full, separators=(",", ":"), sort_keys=True).encode("utf-8")
    body = _PREFIX.pack(MAGIC, VERSION, len(head)) + head + pack_codes(codes, bits)
    return body + _CRC.pack(zlib.crc32(body))


def _int_field(header: dict[str, Any], name: str, where: str, minimum: int = 0) -> int:
    value = header.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ClabFormatError(
            f"{where}: header field {name!r} must be an integer >= {minimum}, got {value!r}"
        )
    return value


def from_bytes(data: bytes, where: str = "<bytes>") -> ClabFile:
    """Parse and check a .clab file's bytes; every problem raises `ClabFormatError`."""
    if len(data) < _PREFIX.size + _CRC.size:
        if not data.startswith(MAGIC[: len(data)]) or len(data) == 0:
            raise ClabFormatError(f"{where}: not a .clab file ({len(data)} bytes, no CLAB magic)")
        raise ClabFormatError(f"{where}: truncated .clab file ({len(data)} bytes)")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ClabFormatError(f"{where}: not a .clab file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ClabFormatError(
            f"{where}: .clab format version {version} is not supported (this codeclab reads {VERSION})"
        )
    if head_len > MAX_HEADER or _PREFIX.size + head_len + _CRC.size > len(data):
        raise ClabFormatError(
            f"{where}: truncated or corrupt .clab file (header length {head_len}, file {len(data)} bytes)"
        )
    (stored_crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != stored_crc:
        raise ClabFormatError(f"{where}: corrupt or truncated .clab file (CRC32 mismatch)")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + head_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ClabFormatError(f"{where}: unreadable .clab header ({err})") from None
    if not isinstance(header, dict):
        raise ClabFormatError(f"{where}: the .clab header is not a JSON object")
    n_q = _int_field(header, "n_q", where, 1)
    frames = _int_field(header, "frames", where, 0)
    k = _int_field(header, "codebook_size", where, 2)
    bits = _int_field(header, "bits", where, 1)
    _int_field(header, "audio_length", where, 0)
    _int_field(header, "sample_rate", where, 1)
    if bits != bits_per_code(k):
        raise ClabFormatError(
            f"{where}: header says {bits} bits per code, but codebook_size {k} needs {bits_per_code(k)}"
        )
    payload = data[_PREFIX.size + head_len : -_CRC.size]
    expected = math.ceil(n_q * frames * bits / 8)
    if len(payload) != expected:
        raise ClabFormatError(f"{where}: payload has {len(payload)} bytes, the header implies {expected}")
    codes = unpack_codes(payload, n_q, frames, bits)
    if codes.size and codes.max() >= k:
        raise ClabFormatError(f"{where}: codes exceed the codebook size {k}")
    return ClabFile(header, codes)


def write_clab(path: str | Path, codes: np.ndarray, header: dict[str, Any]) -> int:
    """Write a .clab file; returns its size in bytes."""
    blob = to_bytes(codes, header)
    Path(path).write_bytes(blob)
    return len(blob)


def read_clab(path: str | Path) -> ClabFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ClabFormatError(f"{path}: cannot read ({err.strerror})") from None
    return from_bytes(data, str(path))
