"""Streams of `.clab` packets: audio blocks in, packets out as frames complete (`codeclab encode
--stream`), and packets in, 16-bit PCM out as audio completes (`codeclab decode --stream`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from codeclab.audio.pcm import pcm16_bytes
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.spec import CodecSpec
from codeclab.pipelines.clab_files import clab_header, codec_for_header
from codeclab.tokens.clab import STREAM_VERSION, ClabStreamWriter, from_bytes, iter_stream

V1_STEP_FRAMES = 500  # frames per decode step when a whole (version-1) file is decoded as a stream


def encode_to_stream(
    blocks: Iterable[np.ndarray],
    out: BinaryIO,
    spec: CodecSpec,
    n_q: int | None = None,
    codec: AudioCodec | None = None,
) -> tuple[int, int, AudioCodec]:
    """Encode audio blocks [C, n] (any sizes, as they arrive) through the causal codec `spec` names
    (`codec`: that codec, already loaded), writing a version-2 .clab to `out`, one packet per block that
    completes frames. Returns (frames, samples, codec). Raises StreamingUnsupported for a codec that
    cannot stream."""
    codec = spec.load() if codec is None else codec
    n_q = codec.check_n_q(n_q)
    samples = frames = 0
    with codec.streaming(batch_size=1, n_q=n_q) as stream:
        writer = ClabStreamWriter(out, clab_header(codec, spec), n_q)
        for block in blocks:
            block = torch.as_tensor(np.asarray(block, dtype=np.float32))
            samples += block.shape[-1]
            codes = stream.encode_step(block[None])[0].cpu().numpy()
            writer.write(codes)
            frames += codes.shape[1]
        if samples == 0:
            raise ValueError("empty audio: no samples to encode")
        last = stream.encode_flush()[0].cpu().numpy()
        writer.write(last)
        writer.close(samples)
    return frames + last.shape[1], samples, codec


def decode_to_pcm(
    source: BinaryIO, out: BinaryIO, override: CodecSpec | None = None, where: str = "stdin"
) -> float:
    """Decode a .clab read from `source` (either version; a version-2 stream is decoded packet by
    packet as it arrives) to raw 16-bit PCM written to `out` as the audio completes. Returns seconds."""
    parts = _clab_parts(source, where)
    header = next(parts)
    codec = codec_for_header(header, override, where)
    hop, written, held = codec.hop_length, 0, np.zeros((codec.channels, 0), np.float32)
    with codec.streaming(batch_size=1, n_q=header["n_q"]) as stream:

        def send(audio: np.ndarray, final: bool) -> None:
            nonlocal written, held
            held = np.concatenate([held, audio], axis=1)
            # the last frame may be padding past the item's end: hold one frame until the end is known
            keep = 0 if final else hop
            ready = held[:, : max(held.shape[1] - keep, 0)]
            if final:
                ready = ready[:, : max(int(header["audio_length"]) - written, 0)]
            if ready.shape[1]:
                out.write(pcm16_bytes(ready))
                out.flush()
                written += ready.shape[1]
            held = held[:, ready.shape[1] :] if not final else held[:, :0]

        for codes in parts:
            send(stream.decode_step(torch.from_numpy(codes)[None])[0].cpu().numpy(), final=False)
        send(stream.decode_flush()[0].cpu().numpy(), final=True)
    return written / codec.sample_rate


def _clab_parts(source: BinaryIO, where: str):
    """Header, then codes [n_q, f] per packet: a version-2 stream as it arrives, a version-1 file whole
    (its header's frames and audio_length are known up front)."""
    head = source.read(5)
    rest = _Prefixed(head, source)
    if len(head) == 5 and head[4] == STREAM_VERSION:
        yield from iter_stream(rest, where)
        return
    clab = from_bytes(rest.read(), where)
    yield clab.header
    for start in range(0, clab.codes.shape[1], V1_STEP_FRAMES):  # decode steps of bounded size
        yield clab.codes[:, start : start + V1_STEP_FRAMES]


class _Prefixed:
    """Reads `prefix`, then the rest of `stream` (puts back the bytes read to peek at the version)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix, self._stream = prefix, stream

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data, self._prefix = self._prefix + self._stream.read(), b""
            return data
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._stream.read(size)


def open_binary(path: Path, mode: str) -> BinaryIO:
    """`-` is stdin or stdout (binary); anything else a file."""
    import sys

    if str(path) == "-":
        return sys.stdin.buffer if "r" in mode else sys.stdout.buffer
    return open(path, mode)  # noqa: SIM115 (the caller closes it)
