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

Version 2, the packet layout, is written while codes are made (`codeclab encode --stream`) and can be
read while it arrives (`iter_stream`): the header leaves out `frames` and `audio_length`, and packets follow.

    0        4     magic b"CLAB"
    4        1     format version (2)
    5        4     header length H (u32)
    9        H     header: as version 1 without frames and audio_length, plus "coding": "bits"
    9+H      4     CRC32 of every byte before it
    then packets, each: u16 frames f (1..65535), ceil(n_q*f*bits/8) bytes of codes packed as in version 1,
                   u32 CRC32 of the packet's bytes before it
    end packet:    u16 0, u64 audio_length, u32 CRC32

Version 3, packets that survive loss and may be range coded with the codec's entropy model, is described
in `codeclab.tokens.clab_packets` (read by `clab_packet_reader`); `codeclab encode` writes it. Versions 1
and 2 still decode. What all versions share (prefix, header checks, bit packing) is in `clab_format`;
this module reads any version.

Anything else (foreign, truncated or corrupt files, inconsistent headers, codes out of range) raises
`ClabFormatError`, never another exception and never garbage codes.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from codeclab._checks import check_codes, codes_out_of_range
from codeclab._files import read_up_to
from codeclab.tokens.clab_format import (
    CRC,
    MAGIC,
    MAX_HEADER,
    PACKET_VERSION,
    PREFIX,
    STREAM_VERSION,
    VERSION,
    ClabFile,
    ClabFormatError,
    bits_per_code,
    check_header,
    check_prefix,
    pack_codes,
    packet_layout_prefix,
    parse_header,
    unpack_codes,
)
from codeclab.tokens.clab_packet_reader import read_packet_header, read_packets
from codeclab.tokens.entropy import EntropyModel

__all__ = [
    "ClabFile",
    "ClabFormatError",
    "ClabStreamWriter",
    "bits_per_code",
    "check_header",
    "from_bytes",
    "iter_stream",
    "pack_codes",
    "peek_header",
    "read_clab",
    "read_clab_bytes",
    "read_stream",
    "to_bytes",
    "unpack_codes",
    "write_clab",
]

_FRAMES = struct.Struct("<H")
_LENGTH = struct.Struct("<Q")
STREAM_MAX_PACKET_FRAMES = 65535  # version 2: a u16 frame count per packet


def to_bytes(codes: np.ndarray, header: dict[str, Any]) -> bytes:
    """Serialise codes [n_q, F] with `header` (which must give codebook_size and audio_length)."""
    k = int(header["codebook_size"])
    codes = check_codes(codes, k)
    bits = bits_per_code(k)
    full = {**header, "n_q": int(codes.shape[0]), "frames": int(codes.shape[1]), "bits": bits}
    check_header(full, "the .clab header to write")  # never write a file the reader refuses
    head = json.dumps(full, separators=(",", ":"), sort_keys=True).encode("utf-8")
    body = PREFIX.pack(MAGIC, VERSION, len(head)) + head + pack_codes(codes, bits)
    return body + CRC.pack(zlib.crc32(body))


def from_bytes(
    data: bytes, where: str = "<bytes>", model: EntropyModel | None = None, strict: bool = False
) -> ClabFile:
    """Parse and check a .clab file's bytes; every problem raises `ClabFormatError`. Version 3 (packets):
    `model` is the entropy model of a range-coded file; damage is concealed, or an error when `strict`."""
    if len(data) < PREFIX.size + CRC.size:
        if not data.startswith(MAGIC[: len(data)]) or len(data) == 0:
            raise ClabFormatError(f"{where}: not a .clab file ({len(data)} bytes, no CLAB magic)")
        raise ClabFormatError(f"{where}: truncated .clab file ({len(data)} bytes)")
    magic, version, head_len = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ClabFormatError(f"{where}: not a .clab file (magic {magic!r}, expected {MAGIC!r})")
    if version == STREAM_VERSION:
        return read_stream(io.BytesIO(data), where)
    if version == PACKET_VERSION:
        return read_packets(data, where, model, strict)
    if version != VERSION:
        raise ClabFormatError(
            f"{where}: .clab format version {version} is not supported (this codeclab reads "
            f"{VERSION}, {STREAM_VERSION} and {PACKET_VERSION})"
        )
    if head_len > MAX_HEADER or PREFIX.size + head_len + CRC.size > len(data):
        raise ClabFormatError(
            f"{where}: truncated or corrupt .clab file (header length {head_len}, file {len(data)} bytes)"
        )
    (stored_crc,) = CRC.unpack_from(data, len(data) - CRC.size)
    if zlib.crc32(data[: -CRC.size]) != stored_crc:
        raise ClabFormatError(f"{where}: corrupt or truncated .clab file (CRC32 mismatch)")
    header = parse_header(data[PREFIX.size : PREFIX.size + head_len], where)
    check_header(header, where)
    n_q, frames, k, bits = (header[name] for name in ("n_q", "frames", "codebook_size", "bits"))
    payload = data[PREFIX.size + head_len : -CRC.size]
    expected = math.ceil(n_q * frames * bits / 8)
    if len(payload) != expected:
        raise ClabFormatError(f"{where}: payload has {len(payload)} bytes, the header implies {expected}")
    codes = unpack_codes(payload, n_q, frames, bits)
    if codes_out_of_range(codes, k) is not None:
        raise ClabFormatError(f"{where}: codes exceed the codebook size {k}")
    return ClabFile(header, codes)


def write_clab(path: str | Path, codes: np.ndarray, header: dict[str, Any]) -> int:
    """Write a .clab file; returns its size in bytes."""
    blob = to_bytes(codes, header)
    Path(path).write_bytes(blob)
    return len(blob)


def read_clab(path: str | Path, model: EntropyModel | None = None, strict: bool = False) -> ClabFile:
    """A .clab file of any version (see `from_bytes`)."""
    return from_bytes(read_clab_bytes(path), str(path), model, strict)


def read_clab_bytes(path: str | Path) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as err:
        raise ClabFormatError(f"{path}: cannot read ({err.strerror})") from None


def peek_header(data: bytes, where: str = "<bytes>") -> dict[str, Any]:
    """The header of a .clab file's bytes (any version), checked as far as it goes, without the codes:
    what a reader needs to open the codec (and its entropy model) before decoding."""
    if len(data) < PREFIX.size or data[:4] != MAGIC:
        return from_bytes(data, where).header  # the format error, worded as for a whole read
    version = data[4]
    if version == PACKET_VERSION:
        return read_packet_header(data, where)
    if version == STREAM_VERSION:
        return next(iter_stream(io.BytesIO(data), where))
    return from_bytes(data, where).header


# -- version 2: packets ------------------------------------------------------------------------------
STREAM_FIELDS = ("frames", "audio_length")  # known only at the end of a stream


class ClabStreamWriter:
    """Writes a version-2 .clab to a binary file object as codes arrive: `write(codes [n_q, f])` sends
    one packet per call (flushed), `close(audio_length)` the end packet. The header is checked first."""

    def __init__(self, out: BinaryIO, header: dict[str, Any], n_q: int) -> None:
        self.out = out
        self.bits = bits_per_code(int(header["codebook_size"]))
        self.codebook_size = int(header["codebook_size"])
        self.n_q = n_q
        self.frames = 0
        full = {**header, "n_q": n_q, "bits": self.bits, "coding": "bits"}
        check_header({**full, "frames": 1, "audio_length": 1}, "the .clab header to write")
        for name in STREAM_FIELDS:
            full.pop(name, None)
        self._send(packet_layout_prefix(full, STREAM_VERSION))

    def _send(self, blob: bytes) -> None:
        self.out.write(blob)
        self.out.flush()

    def write(self, codes: np.ndarray) -> None:
        """Codes [n_q, f] of the next f frames (f may be 0: nothing is sent)."""
        codes = check_codes(codes, self.codebook_size, n_q=self.n_q)
        for start in range(0, codes.shape[1], STREAM_MAX_PACKET_FRAMES):
            piece = codes[:, start : start + STREAM_MAX_PACKET_FRAMES]
            body = _FRAMES.pack(piece.shape[1]) + pack_codes(piece, self.bits)
            self._send(body + CRC.pack(zlib.crc32(body)))
            self.frames += piece.shape[1]

    def close(self, audio_length: int) -> None:
        """The end packet: the item's length in samples (at most what the frames written can hold)."""
        if self.frames == 0:
            raise ValueError("a .clab stream needs at least one frame")
        body = _FRAMES.pack(0) + _LENGTH.pack(int(audio_length))
        self._send(body + CRC.pack(zlib.crc32(body)))


def _read_exactly(stream: BinaryIO, size: int, where: str, what: str) -> bytes:
    data = read_up_to(stream, size)
    if len(data) < size:
        raise ClabFormatError(f"{where}: truncated .clab stream (ended inside {what})")
    return data


def iter_stream(stream: BinaryIO, where: str = "<stream>") -> Iterator[dict[str, Any] | np.ndarray]:
    """Read a version-2 .clab from a binary file object as it arrives: yields the header (a dict), then
    codes [n_q, f] per packet; at the end packet, the header gains `frames` and `audio_length` and is
    checked whole. Every problem raises ClabFormatError naming `where` (and the packet)."""
    prefix = _read_exactly(stream, PREFIX.size, where, "the prefix")
    head_len = check_prefix(prefix, STREAM_VERSION, where)
    raw = _read_exactly(stream, head_len, where, "the header")
    (crc,) = CRC.unpack(_read_exactly(stream, CRC.size, where, "the header CRC"))
    if zlib.crc32(prefix + raw) != crc:
        raise ClabFormatError(f"{where}: corrupt .clab header (CRC32 mismatch)")
    header = parse_header(raw, where)
    if header.get("coding") != "bits":
        raise ClabFormatError(
            f"{where}: unknown packet coding {header.get('coding')!r} (this codeclab reads 'bits')"
        )
    if any(name in header for name in STREAM_FIELDS):
        raise ClabFormatError(f"{where}: a packet-layout header must not give frames or audio_length")
    check_header({**header, "frames": 1, "audio_length": 1}, where)
    n_q, k, bits = header["n_q"], header["codebook_size"], header["bits"]
    yield header
    frames = packet = 0
    while True:
        head = _read_exactly(stream, _FRAMES.size, where, f"packet {packet}")
        (count,) = _FRAMES.unpack(head)
        body = _read_exactly(
            stream,
            _LENGTH.size if count == 0 else math.ceil(n_q * count * bits / 8),
            where,
            f"packet {packet}",
        )
        (crc,) = CRC.unpack(_read_exactly(stream, CRC.size, where, f"packet {packet}"))
        if zlib.crc32(head + body) != crc:
            raise ClabFormatError(f"{where}: packet {packet} is corrupt (CRC32 mismatch)")
        if count == 0:
            (audio_length,) = _LENGTH.unpack(body)
            header.update(frames=frames, audio_length=audio_length)
            check_header(header, where)
            if stream.read(1):
                raise ClabFormatError(f"{where}: bytes after the end packet")
            return
        codes = unpack_codes(body, n_q, count, bits)
        if codes_out_of_range(codes, k) is not None:
            raise ClabFormatError(f"{where}: packet {packet} has codes beyond the codebook size {k}")
        frames += count
        packet += 1
        yield codes


def read_stream(stream: BinaryIO, where: str = "<stream>") -> ClabFile:
    """A whole version-2 .clab from a binary file object -> ClabFile (codes of every packet)."""
    parts = iter_stream(stream, where)
    header = next(parts)
    n_q = header["n_q"]
    codes = [c for c in parts]
    return ClabFile(header, np.concatenate(codes, axis=1) if codes else np.zeros((n_q, 0), np.int64))
