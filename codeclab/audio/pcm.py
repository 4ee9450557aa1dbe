"""Raw PCM and WAV on pipes: read audio blocks from stdin as they arrive, write 16-bit PCM as it is made.

Input is a WAV stream (detected by its RIFF header; 16-bit integer or 32-bit float samples, any data
size, so `ffmpeg ... -f wav -` works) or else raw signed 16-bit little-endian PCM (`ffmpeg ... -f s16le -`)
at the rate and channel count the caller expects. Nothing is resampled: a WAV stream at another rate or
channel count is refused with a message saying how to convert it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from codeclab._files import read_up_to


class PCMError(ValueError):
    """A PCM or WAV stream that cannot be read as the caller needs; the message names the stream."""


MAX_FMT_BYTES = 1024  # a fmt chunk is 16 to 40 bytes
MAX_SKIPPED_BYTES = 64 << 20  # metadata chunks before the audio: more is not a WAV stream worth reading
SKIP_BLOCK = 1 << 16


def _skip(stream: BinaryIO, size: int, where: str) -> None:
    """Read past `size` bytes of a chunk that is not audio, a block at a time (memory stays bounded)."""
    if size > MAX_SKIPPED_BYTES:
        raise PCMError(f"{where}: a WAV chunk of {size} bytes before the audio (at most {MAX_SKIPPED_BYTES})")
    while size > 0:
        got = read_up_to(stream, min(size, SKIP_BLOCK))
        if not got:
            raise PCMError(f"{where}: the WAV header ends before its data chunk")
        size -= len(got)


def _wav_format(stream: BinaryIO, head: bytes, where: str) -> tuple[int, int, str]:
    """Parse a WAV header whose first 12 bytes are `head`; returns (sample_rate, channels, dtype) with the
    stream left at the first sample."""
    if head[8:12] != b"WAVE":
        raise PCMError(f"{where}: a RIFF stream that is not WAVE audio")
    rate = channels = 0
    dtype = ""
    while True:
        chunk = read_up_to(stream, 8)
        if len(chunk) < 8:
            raise PCMError(f"{where}: the WAV header ends before its data chunk")
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name == b"data":
            if not dtype:
                raise PCMError(f"{where}: the WAV data chunk comes before its fmt chunk")
            return rate, channels, dtype
        if name != b"fmt ":  # LIST, fact, ...: skipped in bounded blocks, whatever size they claim
            _skip(stream, size + (size & 1), where)
            continue
        if size > MAX_FMT_BYTES:
            raise PCMError(f"{where}: a WAV fmt chunk of {size} bytes (at most {MAX_FMT_BYTES})")
        body = read_up_to(stream, size + (size & 1))
        if name == b"fmt ":
            if len(body) < 16:
                raise PCMError(f"{where}: truncated WAV fmt chunk")
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if fmt == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the subformat says
                fmt = struct.unpack("<H", body[24:26])[0]
            if (fmt, bits) == (1, 16):
                dtype = "<i2"
            elif (fmt, bits) == (3, 32):
                dtype = "<f4"
            else:
                raise PCMError(
                    f"{where}: WAV with format {fmt} and {bits} bits per sample; stream 16-bit PCM "
                    "(ffmpeg -c:a pcm_s16le) or 32-bit float"
                )


def read_pcm_blocks(
    stream: BinaryIO, sample_rate: int, channels: int, block: int, where: str = "stdin"
) -> Iterator[np.ndarray]:
    """Audio blocks [channels, n] float32 in [-1, 1] (n <= `block` samples) read from `stream` as they
    arrive, until it ends. WAV is detected by its header; anything else is raw s16le PCM."""
    head = read_up_to(stream, 12)
    dtype, pending = "<i2", b""
    if head[:4] == b"RIFF":
        rate, found, dtype = _wav_format(stream, head, where)
        if (rate, found) != (sample_rate, channels):
            raise PCMError(
                f"{where}: WAV at {rate} Hz with {found} channel(s); the codec needs {sample_rate} Hz with "
                f"{channels} (convert it: ffmpeg -i IN -ar {sample_rate} -ac {channels} -f s16le -)"
            )
    else:
        pending = head
    width = np.dtype(dtype).itemsize * channels
    while True:
        data = pending + read_up_to(stream, block * width - len(pending))
        usable = len(data) // width * width
        if usable:
            samples = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, channels).T
            yield samples.astype(np.float32) / (32768.0 if dtype == "<i2" else 1.0)
        pending = data[usable:]
        if len(data) < block * width:  # the stream has ended
            if pending:
                raise PCMError(f"{where}: the stream ends inside a sample ({len(pending)} stray bytes)")
            return


def pcm16_bytes(wav: np.ndarray) -> bytes:
    """Audio [channels, n] float -> interleaved signed 16-bit little-endian bytes (clipped to [-1, 1])."""
    samples = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    return (np.round(samples.T * 32767.0)).astype("<i2").tobytes()
