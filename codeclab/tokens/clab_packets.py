"""`.clab` version 3: packets that survive loss, coded as bits or range coded with an entropy model.

Layout (integers little-endian):

    0        4     magic b"CLAB"
    4        1     format version (3)
    5        4     header length H (u32)
    9        H     header: UTF-8 JSON (codec, sample_rate, channels, hop_length, codebook_size, n_q, bits,
                   coding "bits" or "range", packet_frames P (1..127), entropy_model: the model's sha256
                   when coding is "range"; frames and audio_length when known before the packets)
    9+H      4     CRC32 of every byte before it
    packets, each 9 bytes plus its payload:
             2     sync b"\\xC1\\xAB"
             2     sequence number (u16, packet index mod 65536)
             1     frames f (1..P; every packet but the last has P), 0 for the end packet; in a range-coded
                   file, bit 7 set: this packet is bit-packed (range coding would have cost more)
             2     payload length L (u16)
             L     payload: codes [n_q, f] packed as version 1 ("bits") or range coded ("range"); the end
                   packet's: u64 frames, u64 audio_length
             2     CRC-16/CCITT of sequence..payload

A damaged packet (its CRC, fields or payload wrong) or a missing one (its sequence number skipped) loses
only its own frames: the reader resynchronises at the next sync word whose packet checks, and marks the
lost frames. Concealment (`conceal`): a lost frame takes the codes of the last good frame before it (of the
first good frame after it at the start); the decoder fades the audio of concealed frames out
(`concealment_gain`). With `strict=True` any damage raises ClabFormatError naming the packet.
"""

from __future__ import annotations

import binascii
import io
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from codeclab._checks import check_codes
from codeclab.tokens.clab_format import (
    CRC,
    PACKET_VERSION,
    PREFIX,
    bits_per_code,
    check_header,
    pack_codes,
    packet_layout_prefix,
)
from codeclab.tokens.entropy import EntropyModel

SYNC = b"\xc1\xab"
HEAD = struct.Struct("<2sHBH")  # sync, sequence, frames, payload length
CRC16 = struct.Struct("<H")
END = struct.Struct("<QQ")  # frames, audio_length
PACKET_OVERHEAD = HEAD.size + CRC16.size
DEFAULT_PACKET_FRAMES = 5  # 100 ms at 50 Hz
MAX_PACKET_FRAMES = 127  # version 3: seven bits of the frames byte (the eighth is PACKED_FLAG)
PACKED_FLAG = (
    0x80  # in a range-coded file, a packet whose codes are bit-packed (range coding would cost more)
)
MAX_GAP_PACKETS = 4096  # a sequence jump beyond this is taken for a false sync, not a loss...
CONFIRM_PACKETS = 2  # ...unless this many packets after it check and follow it in sequence (a long burst)
MAX_LOSS_RATIO = 64  # more lost frames than this per good frame: refused (bounds what a crafted file costs)
CODINGS = ("bits", "range")
SCAN_BYTES = 64  # bytes read at a time while looking for the next sync word
FADE_FRAMES = 3  # concealed frames fade to silence over this many frames


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def max_payload(frames: int, n_q: int, bits: int, coding: str) -> int:
    """The most payload bytes a packet of `frames` frames can hold: the packed size for "bits"; for
    "range", 24 bits per code (constriction's probability precision bounds a code's cost) plus 8 bytes."""
    if coding == "bits":
        return -(-frames * n_q * bits // 8)
    return -(-frames * n_q * 24 // 8) + 8


@dataclass
class PacketReport:
    """What a reader met: packets read, frames concealed and a line per damage."""

    packets: int = 0
    concealed_frames: int = 0
    damage: list[str] = field(default_factory=list)


def range_payload(model: EntropyModel, codes: np.ndarray) -> bytes:
    """Range-coded codes, less the trailing zero bytes of the last 32-bit word (restored on reading)."""
    blob = model.encode(codes)
    trimmed = blob.rstrip(b"\0")
    return blob[: max(len(trimmed), len(blob) - 3)]


def packet_payload(codes: np.ndarray, bits: int, model: EntropyModel | None) -> tuple[bytes, int]:
    """One packet's payload and flag: codes [n_q, f] bit-packed (no model, flag 0), or range coded with
    `model`, unless that is not smaller: then bit-packed with `PACKED_FLAG`, so range coding never costs
    more than bits."""
    packed = pack_codes(codes, bits)
    if model is None:
        return packed, 0
    ranged = range_payload(model, codes)
    return (ranged, 0) if len(ranged) < len(packed) else (packed, PACKED_FLAG)


def range_coded_bytes(
    model: EntropyModel, codes: np.ndarray, packet_frames: int = DEFAULT_PACKET_FRAMES
) -> int:
    """Payload bytes of codes [n_q, F] range coded in packets of `packet_frames` frames, as
    `ClabPacketWriter` writes them (`packet_payload`: the real size of the codes, without framing)."""
    bits = bits_per_code(model.codebook_size)
    return sum(
        len(packet_payload(codes[:, s : s + packet_frames], bits, model)[0])
        for s in range(0, codes.shape[1], packet_frames)
    )


class ClabPacketWriter:
    """Writes a version-3 .clab to a binary file object: `write(codes [n_q, f])` as codes arrive (a
    packet goes out each time `packet_frames` frames are complete), `close(audio_length)` sends the rest
    and the end packet. `coding="range"` needs `model` (an EntropyModel of at least n_q codebooks)."""

    def __init__(
        self,
        out: BinaryIO,
        header: dict[str, Any],
        n_q: int,
        coding: str = "bits",
        model: EntropyModel | None = None,
        packet_frames: int = DEFAULT_PACKET_FRAMES,
    ) -> None:
        if coding not in CODINGS:
            raise ValueError(f"coding must be one of {CODINGS}, got {coding!r}")
        if not 1 <= packet_frames <= MAX_PACKET_FRAMES:
            raise ValueError(f"packet_frames must lie in [1, {MAX_PACKET_FRAMES}], got {packet_frames}")
        self.codebook_size = int(header["codebook_size"])
        if coding == "range":
            if model is None:
                raise ValueError("range coding needs an entropy model")
            if model.codebook_size != self.codebook_size or model.n_q < n_q:
                raise ValueError(
                    f"the entropy model codes {model.n_q} codebooks of {model.codebook_size}, not "
                    f"{n_q} of {self.codebook_size}"
                )
        self.out, self.n_q, self.coding, self.model = out, n_q, coding, model
        self.bits = bits_per_code(self.codebook_size)
        self.packet_frames = packet_frames
        self.frames = 0
        self.payload_bytes = 0
        self._sequence = 0
        self._pending = np.zeros((n_q, 0), dtype=np.int64)
        full = {**header, "n_q": n_q, "bits": self.bits, "coding": coding, "packet_frames": packet_frames}
        if coding == "range" and model is not None:
            full["entropy_model"] = model.sha256
        check_header({"frames": 1, "audio_length": 1, **full}, "the .clab header to write")
        self._send(packet_layout_prefix(full, PACKET_VERSION))

    def _send(self, blob: bytes) -> None:
        self.out.write(blob)
        self.out.flush()

    def _packet(self, count: int, payload: bytes) -> None:
        body = HEAD.pack(SYNC, self._sequence & 0xFFFF, count, len(payload))[2:] + payload
        self._send(SYNC + body + CRC16.pack(crc16(body)))
        self._sequence += 1

    def _emit(self, codes: np.ndarray) -> None:
        payload, flag = packet_payload(codes, self.bits, self.model if self.coding == "range" else None)
        self.payload_bytes += len(payload)
        self._packet(codes.shape[1] | flag, payload)
        self.frames += codes.shape[1]

    def write(self, codes: np.ndarray) -> None:
        """Codes [n_q, f] of the next f frames (f may be 0)."""
        codes = check_codes(codes, self.codebook_size, n_q=self.n_q)
        pending = np.concatenate([self._pending, codes.astype(np.int64)], axis=1)
        full = pending.shape[1] // self.packet_frames * self.packet_frames
        for start in range(0, full, self.packet_frames):
            self._emit(pending[:, start : start + self.packet_frames])
        self._pending = pending[:, full:]

    def close(self, audio_length: int) -> None:
        """The last (shorter) packet and the end packet with the item's frames and length in samples."""
        if self._pending.shape[1]:
            self._emit(self._pending)
            self._pending = self._pending[:, :0]
        if self.frames == 0:
            raise ValueError("a .clab file needs at least one frame")
        self._packet(0, END.pack(self.frames, int(audio_length)))


def write_packets(
    codes: np.ndarray,
    header: dict[str, Any],
    coding: str = "bits",
    model: EntropyModel | None = None,
    packet_frames: int = DEFAULT_PACKET_FRAMES,
) -> tuple[bytes, int]:
    """A whole item's codes [n_q, F] -> (version-3 .clab bytes, payload bytes). `header` gives
    codebook_size and audio_length; frames and audio_length go in the header too."""
    codes = check_codes(codes, int(header["codebook_size"]))
    out = io.BytesIO()
    full = {**header, "frames": int(codes.shape[1])}
    writer = ClabPacketWriter(out, full, codes.shape[0], coding, model, packet_frames)
    writer.write(codes)
    writer.close(int(header["audio_length"]))
    return out.getvalue(), writer.payload_bytes


def packet_spans(blob: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Where a whole, undamaged version-3 file's header ends and each packet's (start, end) byte range,
    the end packet's last (for tests and loss simulations: drop or damage whole packets)."""
    header_end = PREFIX.size + PREFIX.unpack_from(blob)[2] + CRC.size
    spans, pos = [], header_end
    while pos + HEAD.size <= len(blob):
        length = HEAD.unpack_from(blob, pos)[3]
        spans.append((pos, pos + HEAD.size + length + CRC16.size))
        pos = spans[-1][1]
    return header_end, spans


# -- reading ------------------------------------------------------------------------------------------


def conceal(codes: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """codes [n_q, F] with lost frames (mask [F]) replaced by the last good frame before each (the first
    good frame after it, for a loss at the start); all lost: unchanged."""
    lost = np.asarray(lost, dtype=bool)
    if not lost.any() or lost.all():
        return codes
    index = np.where(~lost, np.arange(lost.size), -1)
    index = np.maximum.accumulate(index)
    index[index < 0] = int(np.argmax(~lost))
    return codes[:, index]


class ConcealmentFader:
    """Audio gain of frames in order, as they arrive: within a run of lost frames the gain falls linearly
    to 0 over `FADE_FRAMES` frames and stays 0; the first good frame after a run rises back to 1."""

    def __init__(self, hop: int) -> None:
        self.hop, self.run, self.ramp = hop, 0, np.arange(1, hop + 1, dtype=np.float32)

    def gains(self, lost: np.ndarray) -> np.ndarray:
        """Gains [len(lost) * hop] for the next frames (`lost` [f] bool)."""
        out = np.ones((len(lost), self.hop), dtype=np.float32)
        fade = FADE_FRAMES * self.hop
        for i, is_lost in enumerate(np.asarray(lost, dtype=bool)):
            if is_lost:
                out[i] = np.clip(1.0 - (self.run * self.hop + self.ramp) / fade, 0.0, 1.0)
                self.run += 1
            elif self.run:
                out[i] = self.ramp / self.hop
                self.run = 0
        return out.reshape(-1)


def concealment_gain(lost: np.ndarray, hop: int, length: int) -> np.ndarray:
    """Audio gain [length] of a whole item whose frames `lost` ([F] bool) were concealed (see
    `ConcealmentFader`); 1 past the frames."""
    gain = ConcealmentFader(hop).gains(lost)
    return np.concatenate([gain, np.ones(max(length - gain.size, 0), np.float32)])[:length]
