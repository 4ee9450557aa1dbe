"""Waveform codecs with a bitstream of their own (Opus, Codec 2): no tokens, only an encode-decode pass."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor


@dataclass
class RoundTrip:
    """audio [B, C, T] (zero past each length), bitrate [B] payload bits/s measured, nbytes [B] payload
    bytes, container_nbytes [B] bytes of the whole coded stream (container and headers included)."""

    audio: Tensor
    bitrate: Tensor
    nbytes: Tensor
    container_nbytes: Tensor | None = None


class RoundTripCodec(ABC):
    """A waveform codec with a bitstream of its own (Opus, Codec 2): no discrete tokens, so no encode or
    decode, only an encode-decode pass. Benchmarks accept it beside `AudioCodec`s; `load_codec` never
    returns one (`load_roundtrip_codec` does)."""

    name: str
    sample_rate: int
    channels: int = 1

    @abstractmethod
    def roundtrip(self, wav: Tensor, lengths: Tensor | None = None) -> RoundTrip:
        """wav [B, C, T] -> the audio after encoding and decoding, with the measured bitrate per item."""

    @abstractmethod
    def bitrate(self) -> float:
        """Nominal bits per second."""

    def describe(self) -> dict:
        return {
            "name": self.name,
            "family": "classic",
            "sample_rate": self.sample_rate,
            "bitrate": self.bitrate(),
        }
