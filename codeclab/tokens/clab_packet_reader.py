"""Reading `.clab` version 3 (layout in `codeclab.tokens.clab_packets`): packets as they arrive, each
checked on its own; damage loses only the damaged packet's frames, which are marked and concealed."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from codeclab._checks import codes_out_of_range
from codeclab._files import read_up_to
from codeclab.tokens.clab_format import (
    CRC,
    PACKET_VERSION,
    PREFIX,
    ClabFile,
    ClabFormatError,
    check_header,
    check_prefix,
    parse_header,
    unpack_codes,
)
from codeclab.tokens.clab_packets import (
    CODINGS,
    CONFIRM_PACKETS,
    CRC16,
    END,
    HEAD,
    MAX_GAP_PACKETS,
    MAX_LOSS_RATIO,
    MAX_PACKET_FRAMES,
    PACKED_FLAG,
    SCAN_BYTES,
    SYNC,
    PacketReport,
    conceal,
    crc16,
    max_payload,
    range_payload,
)
from codeclab.tokens.entropy import EntropyError, EntropyModel


def read_packet_header(data: bytes, where: str = "<bytes>") -> dict[str, Any]:
    """The checked header of a version-3 file's bytes, without reading its packets."""
    return _read_header(_Buffer(io.BytesIO(data)), where)


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
    if not buf.fill(PREFIX.size):
        raise ClabFormatError(f"{where}: truncated .clab file (ended inside the prefix)")
    head_len = check_prefix(buf.peek(PREFIX.size), PACKET_VERSION, where)
    if not buf.fill(PREFIX.size + head_len + CRC.size):
        raise ClabFormatError(f"{where}: truncated .clab file (ended inside the header)")
    prefix = buf.peek(PREFIX.size + head_len)
    (crc,) = CRC.unpack(buf.peek(CRC.size, PREFIX.size + head_len))
    if zlib.crc32(prefix) != crc:
        raise ClabFormatError(f"{where}: corrupt .clab header (CRC32 mismatch)")
    buf.advance(len(prefix) + CRC.size)
    header = parse_header(prefix[PREFIX.size :], where)
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
    if not buf.fill(HEAD.size):
        return "truncated packet"
    sync, sequence, count, length = HEAD.unpack(buf.peek(HEAD.size))
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
    limit = END.size if count == 0 else max_payload(count, n_q, bits, coding)
    if length > limit or (count == 0 and length != END.size):
        return f"payload length {length} (at most {limit})"
    if not buf.fill(HEAD.size + length + CRC16.size):
        return "truncated packet"
    body = buf.peek(HEAD.size - 2 + length, 2)
    (crc,) = CRC16.unpack(buf.peek(CRC16.size, HEAD.size + length))
    if crc16(body) != crc:
        return "CRC mismatch"
    return _Packet(sequence, count, body[HEAD.size - 2 :], HEAD.size + length + CRC16.size, packed)


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
        if range_payload(model, codes) != packet.payload:
            # a range decoder reads any bytes as some codes: only a payload that re-encodes to itself is
            # what the writer wrote (garbage, an empty or zero-filled payload, another file's packet of
            # fewer codebooks: each checks its CRC-16 when crafted, and each decodes to arbitrary codes)
            return "a range-coded payload that its codes do not re-encode to (crafted or spliced)"
    if codes_out_of_range(codes, k) is not None:
        return f"codes beyond the codebook size {k}"
    return codes


@dataclass
class PacketEvent:
    """One step of a version-3 read: `codes` [n_q, frames] of good frames, or None for `frames` lost ones
    starting at frame `first`."""

    first: int
    frames: int
    codes: np.ndarray | None


def _check_model(header: dict[str, Any], model: EntropyModel | None, where: str) -> None:
    """A range-coded file names the entropy model it was coded with: `model` must be that one."""
    if header["coding"] != "range":
        return
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


def _final_count(
    header: dict[str, Any],
    end: tuple[int, int] | None,
    frames: int,
    max_lost_before_end: int,
    buf: _Buffer,
    damaged: Callable[[str], None],
) -> tuple[int, int]:
    """(frames, audio_length) of the whole file once the packets are read: the end packet's, checked
    against the header and the frames that arrived; what does not agree is reported as damage."""
    known_frames = header.get("frames")
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
    if end is not None and known_frames is None and total > frames + max_lost_before_end:
        # no packet went missing before the end packet (or too few to hold the difference): its count
        # claims frames that never existed
        damaged(
            f"the end packet says {total} frames, {frames} arrived and at most {max_lost_before_end} were lost"
        )
        total = frames + max_lost_before_end
    return total, audio_length


def _skip_to_next_sync(buf: _Buffer, what: str, damaged: Callable[[str], None]) -> bool:
    """Past a packet that does not check, to the next sync word; False when none is left."""
    skip = buf.find_sync(1)
    damaged(f"{what}; skipped {skip or 'all remaining'} bytes")
    if skip is None:
        buf.advance(len(buf.data) - buf.pos)
        return False
    buf.advance(skip)
    return True


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
    _check_model(header, model, where)
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
            if not _skip_to_next_sync(buf, f"packet {sequence} (byte {buf.tell}): {found}", damaged):
                break
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
            end = END.unpack(found.payload)
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
    total, audio_length = _final_count(header, end, frames, end_gap * per, buf, damaged)
    if total > frames:
        yield from lose(total - frames)
    if good == 0:
        raise ClabFormatError(f"{where}: no packet of codes could be read")
    if total < frames:
        damaged(f"the end packet says {total} frames, {frames} arrived")
    header.update(frames=frames, audio_length=audio_length)
    check_header(header, where)


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
