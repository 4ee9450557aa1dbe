"""R20 (reliability report 2026-12-04): a WAV stream header that claims a huge chunk is refused (or
skipped) without reading it into memory."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from codeclab.audio.pcm import PCMError, read_pcm_blocks


class CountingStream(io.RawIOBase):
    """A stream of a header then endless zeros that records the largest single read asked of it."""

    def __init__(self, head: bytes) -> None:
        self.head, self.largest = head, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.largest = max(self.largest, size)
        if self.head:
            out, self.head = self.head[:size], self.head[size:]
            return out
        return bytes(min(size, 1 << 16))


def test_a_huge_list_chunk_is_refused_without_reading_it_whole():
    stream = CountingStream(b"RIFF\xff\xff\xff\xffWAVELIST" + struct.pack("<I", 0x7FFFFFF0))
    with pytest.raises(PCMError, match="at most"):
        list(read_pcm_blocks(stream, 16000, 1, 1280))
    assert stream.largest <= 1 << 16


def test_a_small_list_chunk_is_skipped():
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    samples = (np.arange(100, dtype=np.int16) * 10).tobytes()
    body = b"WAVE" + b"LIST" + struct.pack("<I", 5) + b"hello\x00" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    blocks = list(read_pcm_blocks(io.BytesIO(b"RIFF" + struct.pack("<I", len(body)) + body), 16000, 1, 1280))
    audio = np.concatenate(blocks, axis=1)
    assert audio.shape == (1, 100) and abs(float(audio[0, 1]) - 10 / 32768) < 1e-6
