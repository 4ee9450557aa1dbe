"""Audio file <-> .clab file: streamed encodes equal whole ones; hostile codec records are refused."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from codeclab.catalog.ref import CodecRef
from codeclab.pipelines.clab_files import decode_file, encode_file
from codeclab.tokens.clab import ClabFormatError, read_clab

TINY = CodecRef("codeclab-tiny", random_init=True)


def test_long_files_stream_with_the_codes_of_a_whole_pass(good_corpus, tmp_path):
    source = good_corpus / "clip6.wav"
    encode_file(source, tmp_path / "whole.clab", TINY)
    encode_file(source, tmp_path / "streamed.clab", TINY, long_seconds=0.1, chunk_seconds=0.2)
    whole, streamed = read_clab(tmp_path / "whole.clab"), read_clab(tmp_path / "streamed.clab")
    assert np.array_equal(whole.codes, streamed.codes)
    assert whole.header == streamed.header


def _with_record(blob: bytes, record) -> bytes:
    """A version-3 file with its header's codec record replaced (and the header CRC made good)."""
    head_len = struct.unpack_from("<I", blob, 5)[0]
    header = json.loads(blob[9 : 9 + head_len])
    header["codec"] = record
    head = json.dumps(header).encode()
    prefix = blob[:5] + struct.pack("<I", len(head)) + head
    return prefix + struct.pack("<I", zlib.crc32(prefix)) + blob[9 + head_len + 4 :]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"name": "/etc"}, "cannot open the codec '/etc' that made the codes"),
        ({"name": "opus"}, "opus is a round-trip codec"),
        ({"name": "codeclab-tiny", "random_init": "yes"}, "'random_init' must be true or false"),
        ({"name": "codeclab-tiny", "random_init": True, "seed": 3}, "does not give its weights' sha256"),
    ],
)
def test_hostile_codec_records_name_the_file(good_corpus, tmp_path, record, message):
    encode_file(good_corpus / "clip6.wav", tmp_path / "x.clab", TINY)
    bad = tmp_path / "bad.clab"
    bad.write_bytes(_with_record((tmp_path / "x.clab").read_bytes(), record))
    with pytest.raises(ValueError, match=message) as caught:
        decode_file(bad, tmp_path / "out.wav")
    assert str(bad) in str(caught.value)
    assert not (tmp_path / "out.wav").exists()


def test_a_clab_with_codes_of_another_codebook_count_is_refused(good_corpus, tmp_path):
    from codeclab.tokens.clab import to_bytes

    encode_file(good_corpus / "clip6.wav", tmp_path / "x.clab", TINY)
    clab = read_clab(tmp_path / "x.clab")
    extra = np.concatenate([clab.codes] * 20)  # more codebooks than the codec has
    header = {
        k: v for k, v in clab.header.items() if k not in ("n_q", "frames", "bits", "coding", "packet_frames")
    }
    (tmp_path / "y.clab").write_bytes(to_bytes(extra, header))  # version 1
    with pytest.raises(ClabFormatError, match="do not fit codec"):
        decode_file(tmp_path / "y.clab", tmp_path / "out.wav")


def test_a_record_whose_weights_differ_is_refused(good_corpus, tmp_path):
    encode_file(good_corpus / "clip6.wav", tmp_path / "x.clab", TINY)
    record = dict(read_clab(tmp_path / "x.clab").header["codec"], seed=3)  # the sha256 of seed 0's weights
    bad = tmp_path / "bad.clab"
    bad.write_bytes(_with_record((tmp_path / "x.clab").read_bytes(), record))
    with pytest.raises(ValueError, match="but the codes were made with"):
        decode_file(bad, tmp_path / "out.wav")


@pytest.mark.parametrize("item_id", [".", "..", "../../x", "/abs", "a//b", ""])
def test_detokenize_refuses_ids_that_are_not_relative_paths(tmp_path, item_id):
    from codeclab.pipelines.detokenize import output_path

    with pytest.raises(ValueError, match="invalid id"):
        output_path(tmp_path, item_id)
    assert output_path(tmp_path, "spk1/utt.flac") == tmp_path / "spk1" / "utt.wav"


def test_long_items_decode_in_chunks_to_the_same_file(tmp_path):
    import soundfile as sf

    from codeclab.audio.signals import synthetic_speech

    sf.write(tmp_path / "in.wav", synthetic_speech(3.0, 16000, seed=2).numpy()[0], 16000)
    spec = CodecRef("codeclab-16k-speech")
    encode_file(tmp_path / "in.wav", tmp_path / "x.clab", spec)
    decode_file(tmp_path / "x.clab", tmp_path / "whole.wav")
    decode_file(tmp_path / "x.clab", tmp_path / "chunked.wav", long_seconds=0.5, chunk_seconds=0.4)
    whole, _ = sf.read(tmp_path / "whole.wav", dtype="int16")
    chunked, _ = sf.read(tmp_path / "chunked.wav", dtype="int16")
    assert whole.shape == chunked.shape
    assert np.abs(whole.astype(int) - chunked.astype(int)).max() <= 1  # 16-bit rounding of ~1e-7 differences
