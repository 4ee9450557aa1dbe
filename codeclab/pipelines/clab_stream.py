"""Streams of `.clab` packets: audio blocks in, packets out as frames complete (`codeclab encode
--stream`), and packets in, 16-bit PCM out as audio completes (`codeclab decode --stream`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from codeclab._files import read_up_to
from codeclab.audio.pcm import pcm16_bytes
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec
from codeclab.pipelines.clab_files import clab_header, codec_for_header, packet_frames_for, resolve_coding
from codeclab.tokens.clab import from_bytes, iter_stream, peek_header
from codeclab.tokens.clab_format import MAX_HEADER, PACKET_VERSION, STREAM_VERSION
from codeclab.tokens.clab_packet_reader import iter_packets
from codeclab.tokens.clab_packets import ClabPacketWriter, ConcealmentFader, PacketReport

V1_STEP_FRAMES = 500  # frames per decode step when a whole (version-1) file is decoded as a stream


def encode_to_stream(
    blocks: Iterable[np.ndarray],
    out: BinaryIO,
    spec: CodecRef,
    n_q: int | None = None,
    codec: AudioCodec | None = None,
    coding: str = "auto",
    packet_ms: float = 20.0,
) -> tuple[int, int, AudioCodec]:
    """Encode audio blocks [C, n] (any sizes, as they arrive) through the causal codec `spec` names
    (`codec`: that codec, already loaded), writing a version-3 .clab to `out`: a packet each time about
    `packet_ms` of frames complete (range coded when `coding` allows, see `resolve_coding`). Returns
    (frames, samples, codec). Raises StreamingUnsupported for a codec that cannot stream."""
    codec = spec.load() if codec is None else codec
    n_q = codec.check_n_q(n_q)
    coding, model = resolve_coding(codec, coding)
    samples = frames = 0
    with codec.streaming(batch_size=1, n_q=n_q) as stream:
        writer = ClabPacketWriter(
            out, clab_header(codec, spec), n_q, coding, model, packet_frames_for(codec, packet_ms)
        )
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
    source: BinaryIO,
    out: BinaryIO,
    override: CodecRef | None = None,
    where: str = "stdin",
    strict: bool = False,
    report: PacketReport | None = None,
) -> float:
    """Decode a .clab read from `source` (any version; versions 2 and 3 packet by packet as they arrive)
    to raw 16-bit PCM written to `out` as the audio completes. Lost frames of a version-3 stream are
    concealed as `decode_file` conceals them (counted in `report`), or raise when `strict`. Returns
    seconds."""
    report = PacketReport() if report is None else report
    head = source.read(5)
    rest = _Prefixed(head, source)
    if len(head) == 5 and head[4] == PACKET_VERSION:
        header_bytes = _header_bytes(rest)
        peeked = peek_header(header_bytes, where)
        codec = codec_for_header(peeked, override, where)
        model = codec.entropy_model() if peeked["coding"] == "range" else None
        events = iter_packets(_Prefixed(header_bytes, source), where, model, strict, report)
        header = next(events)  # gains frames and audio_length at the end packet
        parts = _concealed(events, header["n_q"])
    else:
        parts = _clab_parts(rest, where)
        header = next(parts)
        codec = codec_for_header(header, override, where)
    fader = ConcealmentFader(codec.hop_length)
    hop, written, held = codec.hop_length, 0, np.zeros((codec.channels, 0), np.float32)
    gains = np.zeros(0, np.float32)
    with codec.streaming(batch_size=1, n_q=header["n_q"]) as stream:

        def send(audio: np.ndarray, final: bool) -> None:
            nonlocal written, held, gains
            held = np.concatenate([held, audio], axis=1)
            # the last frame may be padding past the item's end: hold one frame until the end is known
            keep = 0 if final else hop
            ready = held[:, : max(held.shape[1] - keep, 0)]
            if final:
                ready = ready[:, : max(int(header["audio_length"]) - written, 0)]
            if ready.shape[1]:
                gain = np.concatenate([gains, np.ones(max(ready.shape[1] - gains.size, 0), np.float32)])
                out.write(pcm16_bytes(ready * gain[: ready.shape[1]]))
                out.flush()
                gains = gains[ready.shape[1] :]
                written += ready.shape[1]
            held = held[:, ready.shape[1] :] if not final else held[:, :0]

        for codes, lost in parts:
            gains = np.concatenate([gains, fader.gains(lost)])
            send(stream.decode_step(torch.from_numpy(codes)[None])[0].cpu().numpy(), final=False)
        send(stream.decode_flush()[0].cpu().numpy(), final=True)
    return written / codec.sample_rate


def _header_bytes(source) -> bytes:
    """The prefix, header and header CRC of a version-3 stream (read exactly, no further)."""
    prefix = read_up_to(source, 9)
    if len(prefix) < 9:
        return prefix
    size = min(int.from_bytes(prefix[5:9], "little"), MAX_HEADER + 1)
    return prefix + read_up_to(source, size + 4)


def _concealed(events, n_q: int):
    """(codes [n_q, f], lost [f]) per version-3 event: lost frames repeat the last good frame. Frames lost
    before the first good one are held back until it arrives and then take its codes (as a file's
    concealment does), so a stream with no readable packet is refused before any audio is written (the
    reader bounds how many lost frames may come before a good one)."""
    last: np.ndarray | None = None
    waiting = 0  # frames lost before the first good frame
    for event in events:
        if event.codes is None:
            if last is None:
                waiting += event.frames
                continue
            yield np.repeat(last, event.frames, axis=1), np.ones(event.frames, bool)
        else:
            if waiting:
                yield np.repeat(event.codes[:, :1], waiting, axis=1), np.ones(waiting, bool)
                waiting = 0
            last = event.codes[:, -1:]
            yield event.codes, np.zeros(event.frames, bool)


def _clab_parts(source, where: str):
    """Header, then (codes [n_q, f], lost [f]) per packet: a version-2 stream as it arrives, a version-1
    file whole (its header's frames and audio_length are known up front)."""
    head = source.read(5)
    rest = _Prefixed(head, source)
    if len(head) == 5 and head[4] == STREAM_VERSION:
        parts = iter_stream(rest, where)
        yield next(parts)
        for codes in parts:
            yield codes, np.zeros(codes.shape[1], bool)
        return
    clab = from_bytes(rest.read(), where)
    yield clab.header
    for start in range(0, clab.codes.shape[1], V1_STEP_FRAMES):  # decode steps of bounded size
        codes = clab.codes[:, start : start + V1_STEP_FRAMES]
        yield codes, np.zeros(codes.shape[1], bool)


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
