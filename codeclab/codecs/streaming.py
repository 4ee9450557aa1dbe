"""Streaming encode and decode through a causal neural codec: audio in pieces of any size, codes out as
soon as their frames are complete, and audio out as soon as its frames' codes are in (docs/streaming.md).

    with codec.streaming(batch_size=1) as stream:
        codes = stream.encode_step(chunk)      # chunk [B, C, n]: the frames it completes [B, n_q, f]
        audio = stream.decode_step(codes)      # the audio those frames complete [B, C, samples]
    ... stream.encode_flush(), stream.decode_flush() end the streams (the last partial frame, the tail)

Concatenated, a stream's codes equal the codes of a whole-file `encode` in every test (all causal
presets, random chunk sizes), but not by construction: the encoder's latents match a whole pass to float
rounding (`LATENT_TOLERANCE`; measured at most 1e-6 with every convolution step computing at least
`EXACT_OUTPUTS` outputs, 1.6e-5 without), so a code at a near-tie can flip. The audio is a whole-file
`decode` to float rounding (`DECODE_TOLERANCE`). Output already emitted never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils import parametrize

from codeclab.codecs.modules.numerics import exact_numerics
from codeclab.codecs.modules.state import StreamingUnsupported

if TYPE_CHECKING:
    from codeclab.codecs.neural import NeuralCodec

EXACT_OUTPUTS = 16  # outputs per encoder convolution step: thin matrices take BLAS kernels that round apart
LATENT_TOLERANCE = 1e-5  # largest difference, streamed against whole encoder latents, that the tests allow
DECODE_TOLERANCE = 1e-4  # largest difference, streamed against whole decode, that the tests allow

__all__ = ["CodecStream", "Latency", "StreamingUnsupported", "codec_latency"]


@dataclass(frozen=True)
class Latency:
    """Algorithmic latency in milliseconds (compute time not included). encode: a frame's codes leave
    when its last sample has arrived, one frame after its first. decode: a frame's audio is complete when
    the frames it overlaps (the decoder's lookahead) have arrived. roundtrip: the two together."""

    frame_ms: float
    encode_ms: float
    decode_ms: float

    @property
    def roundtrip_ms(self) -> float:
        return self.encode_ms + self.decode_ms

    def as_dict(self) -> dict[str, float]:
        return {
            "frame_ms": self.frame_ms,
            "encode_ms": self.encode_ms,
            "decode_ms": self.decode_ms,
            "roundtrip_ms": self.roundtrip_ms,
        }


def codec_latency(codec: NeuralCodec) -> Latency | None:
    """The latency of a causal codec; None for a codec that needs later audio (it has no stream)."""
    if not codec.causal:
        return None
    frame_ms = 1000.0 * codec.hop_length / codec.sample_rate
    return Latency(frame_ms, frame_ms, frame_ms * codec.decoder.lookahead_frames())


class CodecStream:
    """`batch_size` independent streams through one causal codec: per stream, the encoder's and the
    decoder's memory (a typed state per layer) and the samples of a partial frame.

    Streams of a batch advance together (each step takes [B, ...]). `reset(b)` starts a new stream in
    slot b and leaves the others as they are; with a decoder that looks ahead, the restarted stream's
    first `lookahead` frames of audio come out as silence (the others' blocks keep the batch one tensor).
    """

    def __init__(self, codec: NeuralCodec, batch_size: int = 1, n_q: int | None = None) -> None:
        if not codec.causal:
            raise StreamingUnsupported(
                f"{codec.name} is not causal: its encoder or decoder reads later audio, so it cannot stream; "
                "encode and decode whole files (streaming needs a causal preset, see `codeclab list`)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.codec = codec
        self.batch_size = batch_size
        self.n_q = codec.check_n_q(n_q)
        self._encoder = self._decoder = None
        self._pending = torch.zeros(0)
        self._fresh_encoder()
        self._fresh_decoder()

    def _fresh_encoder(self) -> None:
        codec = self.codec
        self._encoder = codec.encoder.init_state(self.batch_size, EXACT_OUTPUTS)
        self._pending = torch.zeros(self.batch_size, codec.channels, 0, device=codec.device)
        tracker = getattr(codec, "pitch_tracker", None)
        self._pitch = tracker.init_state(self.batch_size, codec.device) if tracker is not None else None

    def _fresh_decoder(self) -> None:
        self._decoder = self.codec.decoder.init_state(self.batch_size)

    @property
    def pending_samples(self) -> int:
        """Samples of a partial frame buffered by `encode_step`: they leave with a later chunk or at
        `encode_flush`."""
        return int(self._pending.shape[-1])

    # -- encode ---------------------------------------------------------------------------------------
    def encode_step(self, wav: Tensor) -> Tensor:
        """Chunk wav [B, C, n] (any n >= 0) -> codes [B, n_q, f] of the f frames it completes (f may be 0;
        a partial frame waits, see `pending_samples`)."""
        codec = self.codec
        expected = (self.batch_size, codec.channels)
        if not isinstance(wav, Tensor) or wav.ndim != 3 or tuple(wav.shape[:2]) != expected:
            shape = tuple(wav.shape) if isinstance(wav, Tensor) else type(wav).__name__
            raise ValueError(
                f"{codec.name}: a stream chunk must have shape [{self.batch_size}, {codec.channels}, n], got {shape}"
            )
        if not torch.is_floating_point(wav) or not bool(torch.isfinite(wav).all()):
            raise ValueError(f"{codec.name}: a stream chunk must hold finite floating-point samples")
        pending = torch.cat([self._pending, wav.to(self._pending.device, torch.float32)], dim=-1)
        whole = pending.shape[-1] // codec.hop_length * codec.hop_length
        self._pending = pending[..., whole:]
        return self._encode_frames(pending[..., :whole])

    def encode_flush(self) -> Tensor:
        """End the streams: the codes [B, n_q, 0 or 1] of a partial frame, zero-padded as a whole pass
        pads an item's last frame. The encoder then starts afresh."""
        hop, pending = self.codec.hop_length, self._pending
        codes = self._encode_frames(
            F.pad(pending, (0, hop - pending.shape[-1])) if pending.shape[-1] else pending
        )
        self._fresh_encoder()
        return codes

    def _encode_frames(self, chunk: Tensor) -> Tensor:
        codec = self.codec
        if chunk.shape[-1] == 0:
            return torch.zeros(self.batch_size, self.n_q, 0, dtype=torch.long, device=codec.device)
        with exact_numerics(codec.device), torch.inference_mode(), parametrize.cached():
            latent = codec.encoder.step(chunk, self._encoder)
            if not getattr(codec, "sends_pitch", False):
                return codec.quantizer.encode(latent, self.n_q)
            codes = codec.quantizer.encode(latent, codec.quantizer_n_q(self.n_q))
            pitch, self._pitch = codec.pitch_tracker.step(chunk[:, :1], self._pitch)
            return codec.merge_pitch(codes, pitch.to(codes.device), self.n_q)

    # -- decode ---------------------------------------------------------------------------------------
    def decode_step(self, codes: Tensor) -> Tensor:
        """codes [B, n_q, f] of the next f frames -> the audio [B, C, samples] they complete: f * hop
        samples, less the decoder's lookahead at the start of a stream (it comes later, or at
        `decode_flush`)."""
        codec = self.codec
        if not isinstance(codes, Tensor) or codes.ndim != 3 or codes.shape[0] != self.batch_size:
            shape = tuple(codes.shape) if isinstance(codes, Tensor) else type(codes).__name__
            raise ValueError(
                f"{codec.name}: stream codes must have shape [{self.batch_size}, n_q, f], got {shape}"
            )
        if codes.shape[-1] == 0:
            return torch.zeros(self.batch_size, codec.channels, 0, device=codec.device)
        codes = codec.checked(codes).codes.to(codec.device)
        if getattr(codec.config, "pitch", None) is not None:
            codes, pitch = codec.split_pitch(codes)
            with torch.inference_mode(), parametrize.cached():
                return codec.decoder.step(codec.quantizer.decode(codes), self._decoder, pitch)
        with torch.inference_mode(), parametrize.cached():
            return codec.decoder.step(codec.quantizer.decode(codes), self._decoder)

    def decode_flush(self) -> Tensor:
        """End the streams: the audio [B, C, lookahead * hop] that waited for frames after the last, made
        as a whole pass makes an item's end. The decoder then starts afresh."""
        with torch.inference_mode():
            wav = self.codec.decoder.flush(self._decoder)
        self._fresh_decoder()
        return wav

    # -- batch ----------------------------------------------------------------------------------------
    def reset(self, index: int) -> None:
        """Start a new stream in slot `index` (encoder and decoder memory back to a fresh stream's),
        leaving the other slots unchanged. Needs no partial frame buffered: feed batched streams whole
        frames (multiples of the hop) when slots are reused."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.batch_size:
            raise ValueError(f"stream index must lie in 0..{self.batch_size - 1}, got {index!r}")
        if self.pending_samples:
            raise ValueError(
                f"cannot reset stream {index} while {self.pending_samples} samples of a partial frame are "
                f"buffered for the batch; feed chunks of whole frames ({self.codec.hop_length} samples)"
            )
        self._encoder.reset(index)
        self._decoder.reset(index)
        if self._pitch is not None:
            with torch.inference_mode():
                self._pitch[index] = 0
