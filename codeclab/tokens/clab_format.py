"""What every version of the `.clab` bitstream shares: the magic and version numbers, the file prefix
(magic, version, header length), the CRC, the JSON header and its checks, and bit packing of codes.

The layouts themselves are described in `codeclab.tokens.clab` (versions 1 and 2) and
`codeclab.tokens.clab_packets` (version 3); this module knows no layout and imports neither.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"CLAB"
VERSION = 1
STREAM_VERSION = 2  # the stream layout
PACKET_VERSION = 3  # packets that survive loss, bits or range coded (tokens/clab_packets.py)
PREFIX = struct.Struct("<4sBI")  # magic, version, header length
CRC = struct.Struct("<I")
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
    """A decoded .clab file: header fields and codes [n_q, frames] int64; for a version-3 file, `lost`
    [frames] bool marks concealed frames and `damage` says what was met (docs/bitstream.md)."""

    header: dict[str, Any]
    codes: np.ndarray
    lost: np.ndarray | None = None
    damage: list[str] = field(default_factory=list)

    @property
    def concealed_frames(self) -> int:
        return 0 if self.lost is None else int(self.lost.sum())

    @property
    def audio_length(self) -> int:
        return int(self.header["audio_length"])

    @property
    def sample_rate(self) -> int:
        return int(self.header["sample_rate"])


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


def parse_header(raw: bytes, where: str) -> dict[str, Any]:
    """The header's JSON object; deep nesting, bad UTF-8 and bad JSON raise ClabFormatError."""
    nesting = max(raw.count(b"["), raw.count(b"{"))
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ClabFormatError(f"{where}: unreadable .clab header ({err})") from None
    except ValueError as err:  # an integer of thousands of digits: Python's own conversion limit
        raise ClabFormatError(f"{where}: unreadable .clab header ({str(err)[:80]})") from None
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


def packet_layout_prefix(header: dict[str, Any], version: int) -> bytes:
    """The opening of a packet-layout file (versions 2 and 3): magic, version, header length, the header
    as compact sorted JSON, and the CRC32 of all of it."""
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    prefix = PREFIX.pack(MAGIC, version, len(head)) + head
    return prefix + CRC.pack(zlib.crc32(prefix))


def check_prefix(prefix: bytes, version: int, where: str) -> int:
    """The header length of a packet-layout file's prefix (magic, version, header length), after checking
    the magic, that the version is `version` and that the header length is within MAX_HEADER."""
    magic, found, head_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ClabFormatError(f"{where}: not a .clab file (magic {magic!r}, expected {MAGIC!r})")
    if found != version:
        raise ClabFormatError(f"{where}: .clab version {found} is not the packet layout ({version})")
    if head_len > MAX_HEADER:
        raise ClabFormatError(f"{where}: header length {head_len} exceeds {MAX_HEADER} bytes")
    return head_len
