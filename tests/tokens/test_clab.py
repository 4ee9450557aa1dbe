import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeclab.tokens.clab import ClabFormatError, from_bytes, pack_codes, to_bytes, unpack_codes

HEADER = {
    "codec": {"name": "test"},
    "sample_rate": 16000,
    "channels": 1,
    "hop_length": 320,
    "audio_length": 320,
}


@pytest.mark.parametrize("k", [2, 3, 64, 1000, 1024, 4096, 64000, 65536])
@pytest.mark.parametrize("n_q", [1, 3, 8])
def test_round_trip_is_lossless(k, n_q):
    rng = np.random.default_rng(k + n_q)
    codes = rng.integers(0, k, size=(n_q, 37))
    codes[:, 0] = k - 1
    blob = to_bytes(codes, {**HEADER, "codebook_size": k, "audio_length": 37 * 320})
    parsed = from_bytes(blob)
    assert np.array_equal(parsed.codes, codes)
    assert parsed.audio_length == 37 * 320


def test_size_is_nominal_bitrate_plus_small_header():
    k, n_q, frames = 1024, 8, 500  # 10 s at 50 Hz: 4 kbps nominal -> 5,000 bytes of codes
    codes = np.random.default_rng(0).integers(0, k, size=(n_q, frames))
    blob = to_bytes(codes, {**HEADER, "codebook_size": k, "audio_length": frames * 320})
    payload = math.ceil(n_q * frames * math.log2(k) / 8)
    assert payload == 5000
    assert payload < len(blob) <= payload + 300


def test_pack_unpack_bit_order():
    codes = np.array([[1, 2], [3, 0]])  # frame-major: 1, 3, 2, 0 with 2 bits each -> 01 11 10 00
    assert pack_codes(codes, 2) == bytes([0b01111000])
    assert np.array_equal(unpack_codes(bytes([0b01111000]), 2, 2, 2), codes)


VALID = to_bytes(
    np.random.default_rng(1).integers(0, 1000, size=(4, 50)),
    {**HEADER, "codebook_size": 1000, "audio_length": 50 * 320},
)


FUZZ = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=300, **FUZZ)
@given(st.data())
def test_fuzzed_files_raise_the_format_error(data):
    _damaged_file_is_refused(data)


@pytest.mark.slow
@settings(max_examples=5000, **FUZZ)
@given(st.data())
def test_many_more_fuzzed_files_raise_the_format_error(data):
    _damaged_file_is_refused(data)


def _damaged_file_is_refused(data) -> None:
    """Truncate, flip, overwrite or extend a valid file (a fixed, derandomized sequence of cases): any
    change raises ClabFormatError."""
    blob = bytearray(VALID)
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "append"]))
    if kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
    elif kind == "overwrite":
        i = data.draw(st.integers(0, len(blob) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=32))
        blob[i : i + len(chunk)] = chunk
    else:
        blob += data.draw(st.binary(min_size=1, max_size=64))
    if bytes(blob) == VALID:
        return  # e.g. two flips of one byte that cancel out
    with pytest.raises(ClabFormatError):
        from_bytes(bytes(blob))


@settings(max_examples=200, **FUZZ)
@given(st.binary(max_size=400))
def test_random_bytes_raise_the_format_error(blob):
    with pytest.raises(ClabFormatError):
        from_bytes(blob)


def _with_crc(body: bytes) -> bytes:
    import struct
    import zlib

    return body + struct.pack("<I", zlib.crc32(body))


def _forge(header_json: bytes, payload: bytes) -> bytes:
    import struct

    return _with_crc(struct.pack("<4sBI", b"CLAB", 1, len(header_json)) + header_json + payload)


@pytest.mark.parametrize(
    "header, payload, message",
    [
        (b"[1, 2]", b"", "not a JSON object"),
        (b"{not json", b"", "unreadable .clab header"),
        (
            b'{"n_q": 1, "frames": 2, "codebook_size": 1000, "bits": 10, "audio_length": 640, "sample_rate": 16000}',
            b"\x00",
            "payload has 1 bytes",
        ),
        (
            b'{"n_q": 1, "frames": 1, "codebook_size": 1000, "bits": 10, "audio_length": 320, "sample_rate": 16000}',
            b"\xff\xc0",
            "exceed the codebook size",
        ),
        (
            b'{"n_q": "1", "frames": 1, "codebook_size": 1000, "bits": 10, "audio_length": 1, "sample_rate": 1}',
            b"\x00\x00",
            "'n_q' must be an integer",
        ),
        (
            b'{"n_q": 1, "frames": 1, "codebook_size": 1000, "bits": 9, "audio_length": 1, "sample_rate": 1}',
            b"\x00\x00",
            "bits per code",
        ),
    ],
)
def test_consistent_crc_but_bad_content(header, payload, message):
    with pytest.raises(ClabFormatError, match=message):
        from_bytes(_forge(header, payload))


def test_foreign_and_newer_files():
    with pytest.raises(ClabFormatError, match="not a .clab file"):
        from_bytes(b"RIFF" + bytes(100))
    newer = bytearray(VALID)
    newer[4] = 4
    with pytest.raises(ClabFormatError, match="version 4 is not supported"):
        from_bytes(bytes(newer))
    relabelled = bytearray(VALID)
    relabelled[4] = 2  # a version-1 body read as the packet layout: its header CRC cannot match
    with pytest.raises(ClabFormatError):
        from_bytes(bytes(relabelled))


def _header(**fields) -> bytes:
    import json

    base = {
        "n_q": 1,
        "frames": 1,
        "codebook_size": 1000,
        "bits": 10,
        "audio_length": 320,
        "sample_rate": 16000,
    }
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize(
    "header, message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),  # was a RecursionError
        (_header(codec={"name": {"a": {"b": {"c": {}}}}}), "nests deeper than 4"),
        (_header(codebook_size=2**64, bits=64), r"'codebook_size' must be an integer in \[2, 16777216\]"),
        (_header(frames=0), r"'frames' must be an integer in \[1,"),
        (_header(audio_length=10**12, hop_length=320), "longer than 1 frames of 320 samples"),
        (_header(channels=10**6), r"'channels' must be an integer in \[1, 16\]"),
        (_header(hop_length=0), r"'hop_length' must be an integer in \[1,"),
        (_header(sample_rate=True), "'sample_rate' must be an integer"),
        (_header(codec={"path": "/etc"}), "codec record must be an object with a 'name' string"),
        (_header(codec="opus"), "codec record must be an object"),
    ],
)
def test_crafted_headers_with_a_valid_crc_are_refused(header, message):
    with pytest.raises(ClabFormatError, match=message):
        from_bytes(_forge(header, b"\x00\x00"))


def test_writer_refuses_headers_the_reader_would_refuse():
    with pytest.raises(ClabFormatError, match="longer than"):
        to_bytes(np.zeros((1, 2), dtype=np.int64), {**HEADER, "codebook_size": 4, "audio_length": 10**9})


# -- version 2: the packet layout ---------------------------------------------------------------------
def _stream_bytes(codes, pieces, audio_length) -> bytes:
    import io

    from codeclab.tokens.clab import ClabStreamWriter

    buffer = io.BytesIO()
    writer = ClabStreamWriter(buffer, {**HEADER, "codebook_size": 1000}, codes.shape[0])
    for start, stop in pieces:
        writer.write(codes[:, start:stop])
    writer.close(audio_length)
    return buffer.getvalue()


STREAM_CODES = np.random.default_rng(2).integers(0, 1000, size=(4, 30))
VALID_STREAM = _stream_bytes(STREAM_CODES, [(0, 4), (4, 4), (4, 17), (17, 30)], 30 * 320 - 77)


def test_packet_layout_round_trip_and_read_as_it_arrives():
    import io

    from codeclab.tokens.clab import iter_stream

    parsed = from_bytes(VALID_STREAM)
    assert np.array_equal(parsed.codes, STREAM_CODES)
    assert parsed.audio_length == 30 * 320 - 77 and parsed.header["frames"] == 30
    parts = list(iter_stream(io.BytesIO(VALID_STREAM)))
    assert [p.shape[1] for p in parts[1:]] == [4, 13, 13]  # one packet per write that had frames


@pytest.mark.parametrize(
    "cut, message", [(-1, "bytes after|CRC32|truncated"), (-10, "truncated"), (40, "truncated")]
)
def test_a_cut_stream_is_refused(cut, message):
    blob = VALID_STREAM[:cut] if cut < 0 else VALID_STREAM[:cut]
    with pytest.raises(ClabFormatError, match=message):
        from_bytes(blob)


def test_a_stream_whose_length_the_frames_cannot_hold_is_refused():
    with pytest.raises(ClabFormatError, match="audio_length"):
        from_bytes(_stream_bytes(STREAM_CODES, [(0, 30)], 40 * 320))


@settings(max_examples=300, **FUZZ)
@given(st.data())
def test_fuzzed_streams_raise_the_format_error(data):
    blob = bytearray(VALID_STREAM)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= data.draw(st.integers(1, 255))
    if bytes(blob) != VALID_STREAM:
        with pytest.raises(ClabFormatError):
            from_bytes(bytes(blob))
