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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from codeclab._checks import check_codes
from codeclab._files import read_up_to
from codeclab.tokens.clab import (
    _CRC,
    _PREFIX,
    MAGIC,
    MAX_HEADER,
    ClabFile,
    ClabFormatError,
    _parse_header,
    bits_per_code,
    check_header,
    pack_codes,
    packet_layout_prefix,
    unpack_codes,
)
from codeclab.tokens.entropy import EntropyError, EntropyModel

PACKET_VERSION = 3
SYNC = b"\xc1\xab"
_HEAD = struct.Struct("<2sHBH")  # sync, sequence, frames, payload length
_CRC16 = struct.Struct("<H")
_END = struct.Struct("<QQ")  # frames, audio_length
PACKET_OVERHEAD = _HEAD.size + _CRC16.size
DEFAULT_PACKET_FRAMES = 5  # 100 ms at 50 Hz
MAX_PACKET_FRAMES = 127
PACKED_FLAG = (
    0x80  # in a range-coded file, a packet whose codes are bit-packed (range coding would cost more)
)
MAX_GAP_PACKETS = 4096  # a sequence jump beyond this is taken for a false sync, not a loss...
CONFIRM_PACKETS = 2  # ...unless this many packets after it check and follow it in sequence (a long burst)
MAX_LOSS_RATIO = 64  # more lost frames than this per good frame: refused (bounds what a crafted file costs)
CODINGS = ("bits", "range")
SCAN_BYTES = 64  # bytes read at a time while looking for the next sync word
FADE_FRAMES = 3  # concealed frames fade to silence over this many frames


def _crc16(data: bytes) -> int:
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


def _range_payload(model: EntropyModel, codes: np.ndarray) -> bytes:
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
    ranged = _range_payload(model, codes)
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
        if coding == "range":
            full["entropy_model"] = model.sha256
        check_header({"frames": 1, "audio_length": 1, **full}, "the .clab header to write")
        self._send(packet_layout_prefix(full, PACKET_VERSION))

    def _send(self, blob: bytes) -> None:
        self.out.write(blob)
        self.out.flush()

    def _packet(self, count: int, payload: bytes) -> None:
        body = _HEAD.pack(SYNC, self._sequence & 0xFFFF, count, len(payload))[2:] + payload
        self._send(SYNC + body + _CRC16.pack(_crc16(body)))
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
        self._packet(0, _END.pack(self.frames, int(audio_length)))


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
    header_end = _PREFIX.size + _PREFIX.unpack_from(blob)[2] + _CRC.size
    spans, pos = [], header_end
    while pos + _HEAD.size <= len(blob):
        length = _HEAD.unpack_from(blob, pos)[3]
        spans.append((pos, pos + _HEAD.size + length + _CRC16.size))
        pos = spans[-1][1]
    return header_end, spans


# -- reading ------------------------------------------------------------------------------------------


class _Buffer:
    """Bytes from a binary stream, read as needed, with look-ahead for resynchronisation."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.data, self.pos, self.offset, self.eof = stream, bytearray(), 0, 0, False

    def fill(self, size: int) -> bool:
        """At least `size` bytes from the current position are available (False at the stream's end)."""
        while len(self.data) - self.pos < size and not self.eof:
            # exactly what is missing: a live stream must not wait for bytes the packet does not need
            chunk = read_up_to(self.stream, size - (len(self.data) - self.pos))
            if not chunk:
                self.eof = True
            self.data += chunk
        return len(self.data) - self.pos >= size

    def peek(self, size: int, at: int = 0) -> bytes:
        return bytes(self.data[self.pos + at : self.pos + at + size])

    def advance(self, size: int) -> None:
        self.pos += size
        if self.pos > 1 << 20:  # drop consumed bytes
            del self.data[: self.pos]
            self.offset += self.pos
            self.pos = 0

    def find_sync(self, start: int) -> int | None:
        """The offset (from the position) of the next sync word at or after `start`, reading as needed."""
        while True:
            found = self.data.find(SYNC, self.pos + start)
            if found >= 0:
                return found - self.pos
            if self.eof:
                return None
            start = max(start, len(self.data) - self.pos - 1)
            self.fill(len(self.data) - self.pos + SCAN_BYTES)

    @property
    def tell(self) -> int:
        return self.offset + self.pos


@dataclass
class _Packet:
    sequence: int
    frames: int
    payload: bytes
    size: int
    packed: bool = False  # bit-packed inside a range-coded file


def _read_header(buf: _Buffer, where: str) -> dict[str, Any]:
    if not buf.fill(_PREFIX.size):
        raise ClabFormatError(f"{where}: truncated .clab file (ended inside the prefix)")
    magic, version, head_len = _PREFIX.unpack(buf.peek(_PREFIX.size))
    if magic != MAGIC:
        raise ClabFormatError(f"{where}: not a .clab file (magic {magic!r}, expected {MAGIC!r})")
    if version != PACKET_VERSION:
        raise ClabFormatError(f"{where}: .clab version {version} is not the packet layout ({PACKET_VERSION})")
    if head_len > MAX_HEADER:
        raise ClabFormatError(f"{where}: header length {head_len} exceeds {MAX_HEADER} bytes")
    if not buf.fill(_PREFIX.size + head_len + _CRC.size):
        raise ClabFormatError(f"{where}: truncated .clab file (ended inside the header)")
    prefix = buf.peek(_PREFIX.size + head_len)
    (crc,) = _CRC.unpack(buf.peek(_CRC.size, _PREFIX.size + head_len))
    if zlib.crc32(prefix) != crc:
        raise ClabFormatError(f"{where}: corrupt .clab header (CRC32 mismatch)")
    buf.advance(len(prefix) + _CRC.size)
    header = _parse_header(prefix[_PREFIX.size :], where)
    coding = header.get("coding")
    if coding not in CODINGS:
        raise ClabFormatError(f"{where}: unknown packet coding {coding!r} (this codeclab reads {CODINGS})")
    check_header({"frames": 1, "audio_length": 1, **header}, where)
    frames_per_packet = header.get("packet_frames")
    if not isinstance(frames_per_packet, int) or not 1 <= frames_per_packet <= MAX_PACKET_FRAMES:
        raise ClabFormatError(
            f"{where}: header field 'packet_frames' must be an integer in [1, {MAX_PACKET_FRAMES}]"
        )
    if coding == "range" and not (
        isinstance(header.get("entropy_model"), str) and len(header["entropy_model"]) == 64
    ):
        raise ClabFormatError(f"{where}: a range-coded file must name its entropy model's sha256")
    return header


def _packet_at(buf: _Buffer, header: dict[str, Any]) -> _Packet | str:
    """The packet at the buffer's position, or why there is none (the reason names what failed)."""
    if not buf.fill(_HEAD.size):
        return "truncated packet"
    sync, sequence, count, length = _HEAD.unpack(buf.peek(_HEAD.size))
    if sync != SYNC:
        return "no sync word"
    n_q, bits, per = header["n_q"], header["bits"], header["packet_frames"]
    packed = bool(count & PACKED_FLAG)
    count &= ~PACKED_FLAG
    if packed and header["coding"] != "range":
        return "a bit-packed flag in a file that is not range coded"
    if count > per or (packed and count == 0):
        return f"{count} frames (the header's packets hold {per})"
    coding = "bits" if packed else header["coding"]
    limit = _END.size if count == 0 else max_payload(count, n_q, bits, coding)
    if length > limit or (count == 0 and length != _END.size):
        return f"payload length {length} (at most {limit})"
    if not buf.fill(_HEAD.size + length + _CRC16.size):
        return "truncated packet"
    body = buf.peek(_HEAD.size - 2 + length, 2)
    (crc,) = _CRC16.unpack(buf.peek(_CRC16.size, _HEAD.size + length))
    if _crc16(body) != crc:
        return "CRC mismatch"
    return _Packet(sequence, count, body[_HEAD.size - 2 :], _HEAD.size + length + _CRC16.size, packed)


def _confirmed_jump(buf: _Buffer, header: dict[str, Any], found: _Packet) -> bool:
    """True when the `CONFIRM_PACKETS` packets after `found` (read ahead, then left unread) each check and
    follow it in sequence: a burst loss longer than MAX_GAP_PACKETS, not a false sync inside damage."""
    saved = buf.pos
    try:
        buf.pos += found.size
        expected = found.sequence
        for _ in range(CONFIRM_PACKETS):
            if not buf.fill(1):
                return found.frames == 0 or expected != found.sequence  # the file ends in sequence
            nxt = _packet_at(buf, header)
            expected = (expected + 1) & 0xFFFF
            if isinstance(nxt, str) or nxt.sequence != expected:
                return False
            if nxt.frames == 0:
                return True  # the end packet, in sequence
            buf.pos += nxt.size
        return True
    finally:
        buf.pos = saved


def _decode_payload(packet: _Packet, header: dict[str, Any], model: EntropyModel | None) -> np.ndarray | str:
    n_q, bits, k = header["n_q"], header["bits"], header["codebook_size"]
    if header["coding"] == "bits" or packet.packed:
        if len(packet.payload) != -(-n_q * packet.frames * bits // 8):
            return f"payload of {len(packet.payload)} bytes for {packet.frames} frames"
        codes = unpack_codes(packet.payload, n_q, packet.frames, bits)
    else:
        padded = packet.payload + b"\0" * (-len(packet.payload) % 4)
        try:
            codes = model.decode(padded, n_q, packet.frames)
        except EntropyError as err:
            return str(err)
        if _range_payload(model, codes) != packet.payload:
            # a range decoder reads any bytes as some codes: only a payload that re-encodes to itself is
            # what the writer wrote (garbage, an empty or zero-filled payload, another file's packet of
            # fewer codebooks: each checks its CRC-16 when crafted, and each decodes to arbitrary codes)
            return "a range-coded payload that its codes do not re-encode to (crafted or spliced)"
    if codes.size and codes.max() >= k:
        return f"codes beyond the codebook size {k}"
    return codes


@dataclass
class PacketEvent:
    """One step of a version-3 read: `codes` [n_q, frames] of good frames, or None for `frames` lost ones
    starting at frame `first`."""

    first: int
    frames: int
    codes: np.ndarray | None


def iter_packets(
    stream: BinaryIO,
    where: str = "<stream>",
    model: EntropyModel | None = None,
    strict: bool = False,
    report: PacketReport | None = None,
) -> Iterator[dict[str, Any] | PacketEvent]:
    """Read a version-3 .clab as it arrives: yields the header, then a PacketEvent per good packet or
    run of lost frames; at the end the header holds `frames` and `audio_length` (from the end packet,
    else from the header, else the frames seen). `model`: the entropy model of a range-coded file (its
    sha256 must be the header's). Damage is concealed and recorded in `report`, or raises
    ClabFormatError naming the packet when `strict`."""
    report = PacketReport() if report is None else report
    buf = _Buffer(stream)
    header = _read_header(buf, where)
    if header["coding"] == "range":
        if model is None:
            raise ClabFormatError(
                f"{where}: range coded with entropy model {header['entropy_model'][:16]}..., and no model "
                "was given (the codec's weights directory ships it as entropy.safetensors)"
            )
        if model.sha256 != header["entropy_model"]:
            raise ClabFormatError(
                f"{where}: range coded with entropy model {header['entropy_model'][:16]}..., not this "
                f"codec's ({model.sha256[:16]}...): decode it with the codec that wrote it"
            )
        if model.n_q < header["n_q"] or model.codebook_size != header["codebook_size"]:
            raise ClabFormatError(f"{where}: the entropy model does not fit the header's codebooks")
    known_frames = header.get("frames")
    per = header["packet_frames"]
    yield header

    def damaged(message: str) -> None:
        if strict:
            raise ClabFormatError(f"{where}: {message}")
        report.damage.append(message)

    frames = sequence = good = end_gap = 0
    end: tuple[int, int] | None = None

    def lose(count: int) -> Iterator[PacketEvent]:
        nonlocal frames
        if report.concealed_frames + count > MAX_LOSS_RATIO * (good + per):
            raise ClabFormatError(
                f"{where}: over {MAX_LOSS_RATIO} lost frames per good one by packet {sequence}; not a "
                "usable .clab file"
            )
        yield PacketEvent(frames, count, None)
        report.concealed_frames += count
        frames += count

    while buf.fill(1):
        found = _packet_at(buf, header)
        if isinstance(found, str):
            at = buf.tell
            skip = buf.find_sync(1)
            damaged(f"packet {sequence} (byte {at}): {found}; skipped {skip or 'all remaining'} bytes")
            if skip is None:
                buf.advance(len(buf.data) - buf.pos)
                break
            buf.advance(skip)
            continue
        gap = (found.sequence - sequence) & 0xFFFF
        if gap > MAX_GAP_PACKETS and not _confirmed_jump(buf, header, found):
            # a sync word inside damaged data whose bytes happen to check: not a packet of this file
            damaged(f"packet at byte {buf.tell} has sequence {found.sequence}, far from {sequence}; skipped")
            buf.advance(1)
            continue
        buf.advance(found.size)
        if gap:
            damaged(f"packets {sequence}..{sequence + gap - 1} are missing")
            sequence += gap
        sequence += 1
        if found.frames == 0:  # the end packet: lost frames before it are filled in below
            end = _END.unpack(found.payload)
            end_gap = gap
            break
        if gap:  # every packet but the last holds `per` frames, and the last is not among these
            yield from lose(gap * per)
        codes = _decode_payload(found, header, model)
        report.packets += 1
        if isinstance(codes, str):
            damaged(f"packet {sequence - 1}: {codes}")
            yield from lose(found.frames)
        else:
            yield PacketEvent(frames, found.frames, codes)
            frames += found.frames
            good += found.frames
    if end is None:
        damaged(f"the end packet is missing (after {frames} frames)")
        total = known_frames if known_frames is not None else frames
        audio_length = header.get("audio_length", total * header.get("hop_length", 1))
    else:
        total, audio_length = end
        if buf.fill(1):
            damaged("bytes after the end packet")
    if known_frames is not None and total != known_frames:
        damaged(f"the end packet says {total} frames, the header {known_frames}")
        total = known_frames
    if end is not None and known_frames is None and total > frames + end_gap * per:
        # no packet went missing before the end packet (or too few to hold the difference): its count
        # claims frames that never existed
        damaged(f"the end packet says {total} frames, {frames} arrived and at most {end_gap * per} were lost")
        total = frames + end_gap * per
    if total > frames:
        yield from lose(total - frames)
    if good == 0:
        raise ClabFormatError(f"{where}: no packet of codes could be read")
    if total < frames:
        damaged(f"the end packet says {total} frames, {frames} arrived")
    header.update(frames=frames, audio_length=audio_length)
    check_header(header, where)


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


def read_packets(
    data: bytes, where: str = "<bytes>", model: EntropyModel | None = None, strict: bool = False
) -> ClabFile:
    """A whole version-3 .clab -> ClabFile: codes [n_q, frames] (lost frames concealed), `lost` [frames]
    bool and the damage met."""
    report = PacketReport()
    events = iter_packets(io.BytesIO(data), where, model, strict, report)
    header = next(events)
    pieces: list[np.ndarray] = []
    lost: list[np.ndarray] = []
    n_q = header["n_q"]
    for event in events:
        if event.codes is None:
            pieces.append(np.zeros((n_q, event.frames), dtype=np.int64))
            lost.append(np.ones(event.frames, dtype=bool))
        else:
            pieces.append(event.codes)
            lost.append(np.zeros(event.frames, dtype=bool))
    mask = np.concatenate(lost)
    codes = conceal(np.concatenate(pieces, axis=1), mask)
    return ClabFile(header, codes, lost=mask, damage=report.damage)
