"""Memory bounds for long files (slow: a 20-minute file)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.peak_memory import PEAK_KIB

pytestmark = pytest.mark.slow

_ENCODE = (
    PEAK_KIB
    + r"""
import sys
from codeclab.catalog.ref import CodecRef
from codeclab.pipelines.clab_files import encode_file
encode_file(sys.argv[1], sys.argv[2], CodecRef("codeclab-16k-speech"))
print(peak_kib() // 1024)  # MiB
"""
)


def _peak_mib(script: str, *args) -> int:
    """Run `script` in a fresh Python with `args`; its last printed number is its peak RSS in MiB."""
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return int(out.stdout.split()[-1])


def test_encoding_a_20_minute_file_stays_under_1_5_gib(tmp_path):
    rng = np.random.default_rng(0)
    seconds, rate = 20 * 60, 16000
    audio = (0.1 * rng.standard_normal(seconds * rate)).astype(np.float32)
    sf.write(tmp_path / "long.flac", audio, rate)
    peak_mib = _peak_mib(_ENCODE, tmp_path / "long.flac", tmp_path / "long.clab")
    assert peak_mib < 1536, peak_mib  # a whole pass peaked at 8.2 GB


_DECODE = (
    PEAK_KIB
    + r"""
import sys
from codeclab.pipelines.clab_files import decode_file
decode_file(sys.argv[1], sys.argv[2])
print(peak_kib() // 1024)  # MiB
"""
)


def test_decoding_a_20_minute_file_stays_under_1_5_gib(tmp_path):
    test_encoding_a_20_minute_file_stays_under_1_5_gib(tmp_path)
    peak_mib = _peak_mib(_DECODE, tmp_path / "long.clab", tmp_path / "decoded.flac")
    assert peak_mib < 1536, peak_mib  # a whole decode peaked at 12.6 GB
    assert sf.info(tmp_path / "decoded.flac").frames == 20 * 60 * 16000


_DECODE_SEANET = (
    PEAK_KIB
    + r"""
import sys
import torch
import codeclab
from codeclab.audio.io import write_audio_blocks
from codeclab.codecs.chunked import decode_stream
codec = codeclab.load_codec("codeclab-16k-small", random_init=True)
codes = torch.randint(0, codec.codebook_size, (codec.num_codebooks, 20 * 60 * 50), generator=torch.Generator().manual_seed(0))
length = codes.shape[1] * codec.hop_length
blocks = (b.numpy() for b in decode_stream(codec, codes, length))
write_audio_blocks(sys.argv[1], blocks, codec.sample_rate, codec.channels)
print(peak_kib() // 1024)  # MiB
"""
)


def test_a_seanet_decoder_decodes_20_minutes_in_bounded_memory(tmp_path):
    """SEANet decoders (transposed convolutions) decode in chunks too, from their walked context."""
    peak_mib = _peak_mib(_DECODE_SEANET, tmp_path / "decoded.flac")
    assert peak_mib < 1536, peak_mib
    assert sf.info(tmp_path / "decoded.flac").frames == 20 * 60 * 16000
