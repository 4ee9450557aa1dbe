"""R10, R11 (reliability report 2026-12-04): a burst loss longer than 4,096 packets loses only its own
frames, and an end packet that claims frames that never existed is damage (`--strict` refuses it)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from codeclab.tokens.clab import ClabFormatError, from_bytes
from codeclab.tokens.clab_packets import (
    CRC16,
    END,
    HEAD,
    ClabPacketWriter,
    crc16,
    packet_spans,
    write_packets,
)

HEADER = {
    "codec": {"name": "test"},
    "sample_rate": 16000,
    "channels": 1,
    "hop_length": 320,
    "codebook_size": 64,
}


def test_a_burst_longer_than_4096_packets_loses_only_its_frames():
    codes = np.random.default_rng(0).integers(0, 64, (1, 30000))
    blob, _ = write_packets(codes, {**HEADER, "audio_length": 30000 * 320}, "bits", None, 5)
    spans = packet_spans(blob)[1]
    cut = blob[: spans[100][0]] + blob[spans[4300][0] :]  # packets 100..4299 lost
    parsed = from_bytes(cut)
    lost = np.zeros(30000, bool)
    lost[500:21500] = True
    assert parsed.concealed_frames == 21000
    assert np.array_equal(parsed.lost, lost)
    assert np.array_equal(parsed.codes[:, ~lost], codes[:, ~lost])
    assert len(parsed.damage) == 1 and "missing" in parsed.damage[0]


def end_packet_claiming(blob: bytes, frames: int) -> bytes:
    """The file with its end packet's frame count replaced (CRC recomputed, as a crafted file would)."""
    start, end = packet_spans(blob)[1][-1]
    packet = bytearray(blob[start:end])
    payload_at = HEAD.size
    _, audio_length = END.unpack(bytes(packet[payload_at : payload_at + END.size]))
    packet[payload_at : payload_at + END.size] = END.pack(frames, audio_length)
    packet[-CRC16.size :] = CRC16.pack(crc16(bytes(packet[2 : -CRC16.size])))
    return blob[:start] + bytes(packet) + blob[end:]


def test_an_end_packet_claiming_frames_that_never_arrived_is_damage():
    codes = np.random.default_rng(1).integers(0, 64, (2, 150))
    out = io.BytesIO()
    writer = ClabPacketWriter(out, dict(HEADER), 2, "bits", None)
    writer.write(codes)
    writer.close(150 * 320)
    crafted = end_packet_claiming(out.getvalue(), 9600)
    parsed = from_bytes(crafted)
    assert parsed.codes.shape[1] == 150 and parsed.concealed_frames == 0
    assert any("9600 frames" in line for line in parsed.damage)
    with pytest.raises(ClabFormatError, match="9600 frames"):
        from_bytes(crafted, strict=True)


def test_crafted_range_payloads_with_valid_crcs_are_damage():
    """R11: garbage, empty and zero-filled range payloads (CRC recomputed) decoded to arbitrary codes."""
    pytest.importorskip("constriction", reason="range coding needs constriction")
    from codeclab.tokens.clab_packets import HEAD
    from codeclab.tokens.entropy import EntropyModel

    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.full(64, 0.05))  # skewed codes: range coding wins over bit packing
    codes = rng.choice(64, size=(2, 80), p=p)
    model = EntropyModel.fit([rng.choice(64, size=(2, 4000), p=p)], 64)
    blob, _ = write_packets(codes, {**HEADER, "audio_length": 80 * 320}, "range", model, 20)
    start, end = packet_spans(blob)[1][1]
    packet = bytearray(blob[start:end])
    _, _, frames, length = HEAD.unpack_from(bytes(packet))
    assert frames == 20  # range coded (no bit-packed flag)
    for payload in (bytes(rng.integers(0, 256, length, dtype=np.uint8)), b"\0" * length):
        crafted = bytearray(packet[: HEAD.size]) + payload + b"\0\0"
        crafted[-2:] = CRC16.pack(crc16(bytes(crafted[2:-2])))
        damaged = blob[:start] + bytes(crafted) + blob[end:]
        parsed = from_bytes(damaged, model=model)
        assert parsed.concealed_frames == 20 and any("re-encode" in line for line in parsed.damage)
        with pytest.raises(ClabFormatError, match="re-encode"):
            from_bytes(damaged, model=model, strict=True)
