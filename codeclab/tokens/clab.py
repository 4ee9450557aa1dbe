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
    check_header(full, "the .clab header to write")  # never write a file the reader refuses
    head = json.dumps(full, separators=(",", ":"), sort_keys=True).encode("utf-8")
    body = _PREFIX.pack(MAGIC, VERSION, len(head)) + head + pack_codes(codes, bits)
    return body + _CRC.pack(zlib.crc32(body))


# header integers and the ranges a reader accepts (a crafted header must not make it allocate or loop)
INT_FIELDS: dict[str, tuple[int, int]] = {
    "n_q": (1, 256),
    "frames": (1, 1 << 31),
    "codebook_size": (2, 1 << 24),
    "bits": (1, 24),
    "audio_length": (1, 1 << 40),
    "sample_rate": (1, 768_000),
    "channels": (1, 16),
    "hop_length": (1, 1 << 16),
}
REQUIRED = ("n_q", "frames", "codebook_size", "bits", "audio_length", "sample_rate")
MAX_DEPTH = 4  # the header is flat but for the codec record (an object of scalars)


def _int_field(header: dict[str, Any], name: str, where: str) -> int:
    low, high = INT_FIELDS[name]
    value = header.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ClabFormatError(
            f"{where}: header field {name!r} must be an integer in [{low}, {high}], got {value!r}"
        )
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _parse_header(raw: bytes, where: str) -> dict[str, Any]:
    """The header's JSON object; deep nesting, bad UTF-8 and bad JSON raise ClabFormatError."""
    nesting = max(raw.count(b"["), raw.count(b"{"))
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ClabFormatError(f"{where}: unreadable .clab header ({err})") from None
    except RecursionError:
        raise ClabFormatError(f"{where}: the .clab header nests too deeply ({nesting} brackets)") from None
    if not isinstance(header, dict):
        raise ClabFormatError(f"{where}: the .clab header is not a JSON object")
    if _depth(header) > MAX_DEPTH:
        raise ClabFormatError(f"{where}: the .clab header nests deeper than {MAX_DEPTH} levels")
    return header


def check_header(header: dict[str, Any], where: str) -> None:
    """Every field a reader relies on: integers in range, bits matching the codebook size, an audio
    length that the frames can hold, a codec record naming its codec."""
    values = {
        name: _int_field(header, name, where) for name in INT_FIELDS if name in header or name in REQUIRED
    }
    k, bits = values["codebook_size"], values["bits"]
    if bits != bits_per_code(k):
        raise ClabFormatError(
            f"{where}: header says {bits} bits per code, but codebook_size {k} needs {bits_per_code(k)}"
        )
    hop = values.get("hop_length")
    if hop is not None and values["audio_length"] > (values["frames"] + 1) * hop:
        raise ClabFormatError(
            f"{where}: audio_length {values['audio_length']} is longer than {values['frames']} frames of "
            f"{hop} samples can hold"
        )
    record = header.get("codec")
    if record is not None and not (
        isinstance(record, dict) and isinstance(record.get("name"), str) and record["name"]
    ):
        raise ClabFormatError(f"{where}: the header's codec record must be an object with a 'name' string")


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
    header = _parse_header(data[_PREFIX.size : _PREFIX.size + head_len], where)
    check_header(header, where)
    n_q, frames, k, bits = (header[name] for name in ("n_q", "frames", "codebook_size", "bits"))
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
