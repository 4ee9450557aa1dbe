""".clab version 3: exact round trips (bits and range coded), loss concealed and counted, strict errors,
fuzzed files never crash."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("constriction", reason="range coding needs constriction")

from codeclab.tokens.clab import ClabFormatError, from_bytes, peek_header  # noqa: E402
from codeclab.tokens.clab_packet_reader import iter_packets  # noqa: E402
from codeclab.tokens.clab_packets import (  # noqa: E402
    PACKET_OVERHEAD,
    ClabPacketWriter,
    conceal,
    concealment_gain,
    packet_spans,
    write_packets,
)
from codeclab.tokens.entropy import EntropyModel  # noqa: E402

K, N_Q, FRAMES, HOP = 1024, 8, 53, 320
HEADER = {
    "codec": {"name": "test"},
    "sample_rate": 16000,
    "channels": 1,
    "hop_length": HOP,
    "codebook_size": K,
    "audio_length": FRAMES * HOP - 7,
}


def skewed(rng, n_q, frames, k=K):
    p = rng.dirichlet(np.full(k, 0.3), size=n_q)
    return np.stack([rng.choice(k, size=frames, p=p[q]) for q in range(n_q)])


RNG = np.random.default_rng(0)
MODEL = EntropyModel.fit([skewed(np.random.default_rng(1), N_Q, 3000)], K)
CODES = skewed(np.random.default_rng(1), N_Q, FRAMES)


def packets_of(blob: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of each packet in a clean file."""
    return packet_spans(blob)[1]


@pytest.mark.parametrize("coding", ["bits", "range"])
@pytest.mark.parametrize("n_q", [1, 3, 8])
@pytest.mark.parametrize("packet_frames", [1, 5, 127])
def test_round_trip_is_exact_for_random_and_real_like_codes(coding, n_q, packet_frames):
    rng = np.random.default_rng(n_q)
    for codes in (rng.integers(0, K, (n_q, FRAMES)), skewed(rng, n_q, FRAMES), np.full((n_q, 1), K - 1)):
        header = {**HEADER, "audio_length": codes.shape[1] * HOP}
        blob, payload = write_packets(codes, header, coding, MODEL, packet_frames)
        parsed = from_bytes(blob, model=MODEL, strict=True)
        assert np.array_equal(parsed.codes, codes)
        assert parsed.audio_length == header["audio_length"]
        assert parsed.concealed_frames == 0 and parsed.damage == []
        if coding == "range":  # a packet range coding would make bigger is bit-packed and flagged
            assert payload <= write_packets(codes, header, "bits", None, packet_frames)[1]
        packets = -(-codes.shape[1] // packet_frames) + 1
        end_payload = 16  # frames and audio_length
        assert len(blob) - payload == blob.index(b"\xc1\xab") + packets * PACKET_OVERHEAD + end_payload


def test_range_coding_is_smaller_than_bits_on_skewed_codes():
    bits, bits_payload = write_packets(CODES, HEADER, "bits")
    coded, coded_payload = write_packets(CODES, HEADER, "range", MODEL)
    assert coded_payload < bits_payload
    # each packet's range coder is flushed: at most 3 bytes above the ideal code length per packet
    assert coded_payload <= MODEL.bits(CODES) / 8 + 3 * len(range(0, FRAMES, 5))
    header = coded.index(b"\xc1\xab")  # the range-coded header also names the model (its sha256)
    assert len(coded) - header < len(bits) - bits.index(b"\xc1\xab")


def test_the_writer_streams_packets_as_frames_complete():
    out = io.BytesIO()
    writer = ClabPacketWriter(
        out, {k: v for k, v in HEADER.items() if k != "audio_length"}, N_Q, "range", MODEL
    )
    sizes = []
    for start in range(0, FRAMES, 7):  # blocks of 7 frames: a packet each time 5 are complete
        writer.write(CODES[:, start : start + 7])
        sizes.append(out.tell())
    writer.close(HEADER["audio_length"])
    assert sizes[0] < sizes[1] < sizes[-1]
    events = iter_packets(io.BytesIO(out.getvalue()), model=MODEL, strict=True)
    header = next(events)
    assert "frames" not in header
    got = np.concatenate([e.codes for e in events], axis=1)
    assert np.array_equal(got, CODES) and header["frames"] == FRAMES


@pytest.mark.parametrize("coding", ["bits", "range"])
@pytest.mark.parametrize("which", [0, 4, 10])  # first, middle and last (the shorter, 3-frame) packet
def test_a_missing_packet_loses_only_its_frames(coding, which):
    blob, _ = write_packets(CODES, HEADER, coding, MODEL)
    start, end = packets_of(blob)[which]
    damaged = from_bytes(blob[:start] + blob[end:], model=MODEL)
    lost = np.zeros(FRAMES, bool)
    lost[which * 5 : which * 5 + 5] = True
    assert np.array_equal(damaged.lost, lost)
    assert damaged.concealed_frames == lost.sum() and len(damaged.damage) == 1
    assert np.array_equal(damaged.codes[:, ~lost], CODES[:, ~lost])
    assert np.array_equal(damaged.codes[:, lost], conceal(CODES, lost)[:, lost])
    with pytest.raises(ClabFormatError, match=f"packets {which}..{which} are missing|end packet"):
        from_bytes(blob[:start] + blob[end:], model=MODEL, strict=True)


@pytest.mark.parametrize("offset", [0, 3, 6, 9])  # sync, sequence, length, payload of packet 2
def test_a_corrupted_packet_is_concealed_and_counted(offset):
    blob, _ = write_packets(CODES, HEADER, "range", MODEL)
    start, _ = packets_of(blob)[2]
    damaged = bytearray(blob)
    damaged[start + offset] ^= 0x5A
    parsed = from_bytes(bytes(damaged), model=MODEL)
    assert parsed.concealed_frames == 5 and np.array_equal(np.flatnonzero(parsed.lost), np.arange(10, 15))
    assert np.array_equal(parsed.codes[:, ~parsed.lost], CODES[:, ~parsed.lost])
    with pytest.raises(ClabFormatError, match="packet 2"):
        from_bytes(bytes(damaged), model=MODEL, strict=True)


def test_a_lost_end_packet_keeps_the_header_length():
    blob, _ = write_packets(CODES, HEADER, "bits")
    start, _ = packets_of(blob)[-1]
    parsed = from_bytes(blob[:start])
    assert parsed.concealed_frames == 0 and parsed.audio_length == HEADER["audio_length"]
    assert np.array_equal(parsed.codes, CODES) and "end packet" in parsed.damage[0]


def test_a_file_coded_with_another_model_is_refused():
    blob, _ = write_packets(CODES, HEADER, "range", MODEL)
    other = EntropyModel.fit([skewed(np.random.default_rng(2), N_Q, 3000)], K)
    with pytest.raises(ClabFormatError, match="entropy model .* not this codec's"):
        from_bytes(blob, model=other)
    with pytest.raises(ClabFormatError, match="no model was given"):
        from_bytes(blob)
    assert peek_header(blob)["entropy_model"] == MODEL.sha256


def test_concealment_repeats_the_last_good_frame_and_fades_the_audio():
    codes = np.arange(12).reshape(2, 6)
    lost = np.array([True, False, False, True, True, False])
    assert conceal(codes, lost).tolist() == [[1, 1, 2, 2, 2, 5], [7, 7, 8, 8, 8, 11]]
    gain = concealment_gain(lost, 4, 24)
    assert gain[4:8].tolist() == [0.25, 0.5, 0.75, 1.0]  # frame 1 fades back in after the loss at 0
    assert gain[8:12].min() == 1.0 and gain[23] == 1.0
    assert gain[0] < 1 and gain[12] < 1
    assert np.all(np.diff(gain[12:20]) <= 0)  # the lost run fades out


VALID, _ = write_packets(CODES[:4, :20], {**HEADER, "audio_length": 20 * HOP}, "range", MODEL)
FUZZ = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


def _fuzzed(data) -> bytes:
    blob = bytearray(VALID)
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "append", "length"]))
    if kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "overwrite":
        i = data.draw(st.integers(0, len(blob) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=32))
        blob[i : i + len(chunk)] = chunk
    elif kind == "length":  # absurd packet lengths
        spans = packets_of(VALID)
        start, _ = spans[data.draw(st.integers(0, len(spans) - 1))]
        blob[start + 5 : start + 7] = data.draw(st.integers(0, 65535)).to_bytes(2, "little")
    else:
        blob += data.draw(st.binary(min_size=1, max_size=64))
    return bytes(blob)


@settings(max_examples=300, **FUZZ)
@given(st.data())
def test_fuzzed_files_give_the_format_error_or_concealed_codes_never_a_crash(data):
    _check_fuzzed(data)


@pytest.mark.slow
@settings(max_examples=5000, **FUZZ)
@given(st.data())
def test_many_more_fuzzed_files(data):
    _check_fuzzed(data)


def _check_fuzzed(data) -> None:
    blob = _fuzzed(data)
    if blob == VALID:
        return
    try:
        parsed = from_bytes(blob, model=MODEL)
    except ClabFormatError:
        pass
    else:  # damage was concealed: the same shape, each good frame exact, the damage said
        assert parsed.codes.shape == (4, 20)
        assert parsed.damage
        good = ~parsed.lost
        assert np.array_equal(parsed.codes[:, good], CODES[:4, :20][:, good])
    try:
        strict = from_bytes(blob, model=MODEL, strict=True)
    except ClabFormatError:
        return
    assert np.array_equal(strict.codes, CODES[:4, :20])  # only harmless changes read strictly


@settings(max_examples=200, **FUZZ)
@given(st.binary(max_size=400))
def test_random_bytes_after_a_valid_header_never_crash(tail):
    header_end = VALID.index(b"\xc1\xab")
    try:
        parsed = from_bytes(VALID[:header_end] + tail, model=MODEL)
    except ClabFormatError:
        return
    assert parsed.codes.shape[1] == 20 and parsed.damage
