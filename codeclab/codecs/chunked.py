"""Encode audio of any length in bounded memory, with exactly the codes of a whole pass (codeclab codecs)
or, for a peer whose encoder context is unbounded, within the window it states (`long_file_context`).

Frame f's codes depend only on input samples [f*hop - before, f*hop + after] (`codec.encoder_context()`).
Frames are therefore encoded in chunks that carry `ceil(before / hop)` frames of real audio before them
and `ceil(after / hop)` after them, and the context frames are dropped. Each chunk starts on a frame
boundary, so every strided layer sees the same phase as in a whole pass. codeclab's encoders compute each
output with arithmetic that does not depend on the input length (see docs/codecs.md, exact batching), so
the kept frames are bit-identical to a whole pass, for causal and non-causal codecs alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from codeclab.codecs.base import AudioCodec, Encoded, LongFileStreamer

DEFAULT_CHUNK_SECONDS = 120.0


def _as_tensor(block: np.ndarray | Tensor) -> Tensor:
    return (
        torch.as_tensor(np.asarray(block, dtype=np.float32))
        if not isinstance(block, Tensor)
        else block.float()
    )


def encodes_in_chunks(codec: AudioCodec, n_q: int | None = None) -> bool:
    """True when `encode_stream` can take `codec`: it has a `long_file_streamer` or a `long_file_context`
    (otherwise a long file is encoded whole)."""
    return codec.long_file_streamer(n_q) is not None or codec.long_file_context() is not None


def encode_stream(
    codec: AudioCodec,
    blocks: Iterable[np.ndarray | Tensor],
    n_q: int | None = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> Encoded:
    """Encode one item delivered as blocks [C, n] (any sizes) -> Encoded with batch size 1.

    Memory holds one chunk plus its context, never the whole item. The context is
    `codec.long_file_context()`: the encoder's own (codes equal a whole pass), or a peer's stated window
    (codes near chunk edges may differ: `codec.long_file_exact` is False). Raises `ValueError` for a codec
    that states neither (encode such audio whole instead). A codec with a `long_file_streamer` (Mimi)
    is encoded through it instead, chunk after chunk of whole frames (codes equal a whole pass)."""
    streamer = codec.long_file_streamer(n_q)
    if streamer is not None:
        return _encode_through_streamer(codec, streamer, blocks, chunk_seconds)
    context = codec.long_file_context()
    if context is None:
        raise ValueError(
            f"{codec.name}: the encoder's context is unknown or unbounded and no window is stated; encode whole"
        )
    before, after = context
    hop = codec.hop_length
    lead = math.ceil(before / hop)  # context frames before a chunk
    tail = math.ceil(after / hop)  # context frames after it
    chunk_frames = max(int(chunk_seconds * codec.frame_rate), 1)

    pieces: list[Tensor] = []
    buffer = torch.zeros(codec.channels, 0)
    buffer_start = 0  # absolute sample index of buffer[0]; always a multiple of hop
    next_frame = 0
    total = 0

    def emit(first: int, stop: int, end_sample: int) -> None:
        nonlocal buffer, buffer_start
        start_sample = max(0, (first - lead) * hop)
        chunk = buffer[:, start_sample - buffer_start : end_sample - buffer_start]
        codes = codec.encode(chunk[None], n_q=n_q).codes[0]
        offset = start_sample // hop
        pieces.append(codes[:, first - offset : stop - offset].cpu())
        keep_from = max(0, (stop - lead) * hop)
        buffer = buffer[:, keep_from - buffer_start :]
        buffer_start = keep_from

    for block in blocks:
        block = _checked_block(codec, block)
        buffer = torch.cat([buffer, block], dim=1)
        total += block.shape[1]
        ready = total // hop - tail  # frames whose right context has arrived
        while ready - next_frame >= chunk_frames:
            stop = next_frame + chunk_frames
            emit(next_frame, stop, (stop + tail) * hop)
            next_frame = stop
    if total == 0:
        raise ValueError("empty audio: no samples to encode")
    frames = math.ceil(total / hop)
    if next_frame < frames:
        emit(next_frame, frames, total)
    codes = torch.cat(pieces, dim=1)
    return Encoded(codes[None], torch.tensor([frames]), torch.tensor([total]))


def _encode_through_streamer(
    codec: AudioCodec, streamer: LongFileStreamer, blocks: Iterable[np.ndarray | Tensor], chunk_seconds: float
) -> Encoded:
    """`encode_stream` through a model's own streaming state: whole-frame chunks in order, the last one
    zero-padded to a whole frame as a whole pass pads it."""
    hop = codec.hop_length
    chunk_samples = max(int(chunk_seconds * codec.frame_rate), 1) * hop
    pieces: list[Tensor] = []
    buffer = torch.zeros(codec.channels, 0)
    total = 0
    for block in blocks:
        block = _checked_block(codec, block)
        buffer = torch.cat([buffer, block], dim=1)
        total += block.shape[1]
        while buffer.shape[1] >= chunk_samples:
            pieces.append(streamer.encode(buffer[:, :chunk_samples]))
            buffer = buffer[:, chunk_samples:]
    if total == 0:
        raise ValueError("empty audio: no samples to encode")
    if buffer.shape[1]:
        frames = math.ceil(buffer.shape[1] / hop)
        pieces.append(streamer.encode(torch.nn.functional.pad(buffer, (0, frames * hop - buffer.shape[1]))))
    return Encoded(
        torch.cat(pieces, dim=1)[None], torch.tensor([math.ceil(total / hop)]), torch.tensor([total])
    )


def _checked_block(codec: AudioCodec, block: np.ndarray | Tensor) -> Tensor:
    block = _as_tensor(block)
    if block.ndim != 2 or block.shape[0] != codec.channels:
        raise ValueError(f"blocks must have shape [{codec.channels}, n], got {tuple(block.shape)}")
    return block


def encode_chunked(
    codec: AudioCodec, wav: Tensor, n_q: int | None = None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS
) -> Encoded:
    """`encode_stream` over one in-memory item wav [C, T] (delivered in chunk-sized blocks)."""
    step = max(int(chunk_seconds * codec.sample_rate), 1)
    return encode_stream(
        codec, (wav[:, i : i + step] for i in range(0, wav.shape[1], step)), n_q, chunk_seconds
    )


def decode_stream(
    codec: AudioCodec, codes: Tensor, audio_length: int, chunk_seconds: float = DEFAULT_CHUNK_SECONDS
) -> Iterator[Tensor]:
    """Decode one item's codes [n_q, F] in chunks: yields audio blocks [C, n] whose concatenation is the
    decode of the whole item (to float rounding), `audio_length` samples in all. Memory holds one chunk
    and its context (`codec.decoder_context()`), never the whole item; a causal codec whose decoder
    carries unbounded state (the source-filter decoder's harmonic phase) is decoded through its own
    stream instead. Raises `ValueError` for a codec that can do neither."""
    if codec.decoder_context() is None and getattr(codec, "causal", False) and hasattr(codec, "streaming"):
        yield from _decode_as_stream(codec, codes, audio_length, chunk_seconds)
        return
    context = codec.decoder_context()
    if context is None:
        raise ValueError(f"{codec.name}: the decoder's context is unknown; decode such codes whole")
    before, after = context
    hop, frames = codec.hop_length, codes.shape[1]
    chunk = max(int(chunk_seconds * codec.frame_rate), 1)
    for first in range(0, frames, chunk):
        stop = min(first + chunk, frames)
        lo, hi = max(0, first - before), min(frames, stop + after)
        piece = codec.decode(Encoded(codes[None, :, lo:hi], torch.tensor([hi - lo])))[0]
        end = min((stop - lo) * hop, audio_length - lo * hop)
        if end > (first - lo) * hop:
            yield piece[:, (first - lo) * hop : end]


def _decode_as_stream(codec, codes: Tensor, audio_length: int, chunk_seconds: float) -> Iterator[Tensor]:
    """`decode_stream` through `codec.streaming`: chunks of codes in, the audio they complete out."""
    chunk = max(int(chunk_seconds * codec.frame_rate), 1)
    done = 0
    with codec.streaming(batch_size=1, n_q=codes.shape[0]) as stream:
        pieces = (
            stream.decode_step(codes[None, :, first : first + chunk])
            for first in range(0, codes.shape[1], chunk)
        )
        tail = (stream.decode_flush() for _ in range(1))  # after the last chunk
        for piece in itertools.chain(pieces, tail):
            piece = piece[0, :, : max(audio_length - done, 0)]
            done += piece.shape[-1]
            if piece.shape[-1]:
                yield piece
