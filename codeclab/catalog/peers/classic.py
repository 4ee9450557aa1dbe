"""Classic codecs as baselines: Opus (libopus) and Codec 2 (libcodec2) through ffmpeg.

They have no discrete tokens, so they implement `RoundTripCodec` (an encode-decode round trip) instead of
`AudioCodec` (`encode` / `decode`):

    opus = load_roundtrip_codec("opus", bitrate=6000)   # or load_roundtrip_codec("codec2", mode=3200)
    result = opus.roundtrip(wav [B, C, T], lengths)   # -> RoundTrip(audio [B, C, T], bitrate [B], nbytes [B])

The bitrate is measured from the encoded bytes of each item: for Opus the packets in the Ogg stream
(container pages and the two header packets excluded), for Codec 2 the frames after its 7-byte header.
Outputs are time-aligned to the input and have its length: Opus pre-skip is handled by ffmpeg (measured
offset within 2 samples); Codec 2's decoder delay, measured at 19-22 ms by envelope alignment, is removed
as 20 ms.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import torch
from torch import Tensor

from codeclab.catalog.registry import register_codec
from codeclab.codecs.base import check_audio
from codeclab.codecs.roundtrip import RoundTrip, RoundTripCodec


class ClassicCodecError(RuntimeError):
    """ffmpeg is missing, lacks an encoder, or failed."""


def require_ffmpeg(encoder: str) -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ClassicCodecError("ffmpeg not found: install it (apt-get install ffmpeg, or `make sysdeps`)")
    listing = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if encoder not in listing:
        raise ClassicCodecError(f"this ffmpeg has no {encoder} encoder (Debian's ffmpeg package has it)")
    return ffmpeg


def _run(cmd: list[str], data: bytes) -> bytes:
    proc = subprocess.run(cmd, input=data, capture_output=True)
    if proc.returncode != 0:
        raise ClassicCodecError(
            f"{' '.join(cmd[:3])} ... failed: {proc.stderr.decode(errors='replace')[-500:]}"
        )
    return proc.stdout


def ogg_packet_bytes(data: bytes) -> tuple[int, int]:
    """(total packet bytes, bytes of the first two packets) of an Ogg stream (Opus: OpusHead, OpusTags)."""
    pos, packets, total, header_bytes, current = 0, 0, 0, 0, 0
    while pos + 27 <= len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ClassicCodecError("malformed Ogg stream from ffmpeg")
        n_segments = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + n_segments]
        for value in lacing:
            current += value
            if value < 255:  # a packet ends here
                if packets < 2:
                    header_bytes += current
                total += current
                packets += 1
                current = 0
        pos += 27 + n_segments + sum(lacing)
    return total, header_bytes


class ClassicCodec(RoundTripCodec):
    """Round trips through ffmpeg at `sample_rate` (mono)."""

    family = "classic"
    channels = 1

    def __init__(self, name: str, sample_rate: int) -> None:
        self.name = name
        self.sample_rate = sample_rate

    ffmpeg: str  # set by subclasses (require_ffmpeg)

    def _roundtrip_item(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        raise NotImplementedError

    def _pcm_input(self) -> list[str]:
        """ffmpeg arguments reading mono float32 PCM at `sample_rate` from stdin."""
        rate = str(self.sample_rate)
        return [
            self.ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "f32le",
            "-ar",
            rate,
            "-ac",
            "1",
            "-i",
            "pipe:0",
        ]

    def _pcm_output(self, container: str) -> list[str]:
        """ffmpeg arguments decoding `container` from stdin to mono float32 PCM at `sample_rate` on stdout."""
        rate = str(self.sample_rate)
        return [
            *[self.ffmpeg, "-hide_banner", "-loglevel", "error", "-f", container, "-i", "pipe:0"],
            *["-f", "f32le", "-ar", rate, "-ac", "1", "pipe:1"],
        ]

    def roundtrip(self, wav: Tensor, lengths: Tensor | None = None) -> RoundTrip:
        wav, lengths = check_audio(wav, lengths, self.channels)
        out = torch.zeros_like(wav, dtype=torch.float32)
        rates, sizes, containers = [], [], []
        for b in range(wav.shape[0]):
            n = int(lengths[b])
            x = wav[b, 0, :n].detach().cpu().float().numpy()
            y, payload, container = self._roundtrip_item(x)
            y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
            out[b, 0, :n] = torch.from_numpy(
                np.array(y, dtype=np.float32)
            )  # a copy: ffmpeg's buffer is read-only
            sizes.append(payload)
            containers.append(container)
            rates.append(payload * 8 / (n / self.sample_rate))
        return RoundTrip(out, torch.tensor(rates), torch.tensor(sizes), torch.tensor(containers))


class OpusCodec(ClassicCodec):
    """libopus, `application voip` by default, at a requested bitrate (bits/s)."""

    def __init__(
        self, bitrate: int = 6000, sample_rate: int = 16000, application: str = "voip", vbr: str = "on"
    ) -> None:
        if sample_rate not in (8000, 12000, 16000, 24000, 48000):
            raise ValueError(f"Opus runs at 8, 12, 16, 24 or 48 kHz, not {sample_rate}")
        if not 500 <= bitrate <= 512000:
            raise ValueError(f"Opus bitrate must lie in 500-512000 bits/s, got {bitrate}")
        super().__init__("opus", sample_rate)
        self.requested = int(bitrate)
        self.application, self.vbr = application, vbr
        self.ffmpeg = require_ffmpeg("libopus")

    def bitrate(self, n_q=None) -> float:
        return float(self.requested)

    def _roundtrip_item(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        encoded = _run(
            [
                *self._pcm_input(),
                "-c:a",
                "libopus",
                "-b:a",
                str(self.requested),
                "-application",
                self.application,
                "-vbr",
                self.vbr,
                "-f",
                "ogg",
                "pipe:1",
            ],
            x.astype(np.float32).tobytes(),
        )
        total, headers = ogg_packet_bytes(encoded)
        decoded = _run(
            self._pcm_output("ogg"),
            encoded,
        )
        return np.frombuffer(decoded, dtype=np.float32), total - headers, len(encoded)


class Codec2Codec(ClassicCodec):
    """Codec 2 (8 kHz speech vocoder) in mode 3200 or 1200; audio is resampled to and from 8 kHz by ffmpeg."""

    MODES = (3200, 2400, 1600, 1400, 1300, 1200)
    HEADER_BYTES = 7
    DELAY_SECONDS = 0.020

    def __init__(self, mode: int = 3200, sample_rate: int = 16000) -> None:
        if mode not in self.MODES:
            raise ValueError(f"Codec 2 mode must be one of {self.MODES}, got {mode}")
        super().__init__("codec2", sample_rate)
        self.mode = int(mode)
        self.ffmpeg = require_ffmpeg("libcodec2")

    def bitrate(self, n_q=None) -> float:
        return float(self.mode)

    def _roundtrip_item(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        encoded = _run(
            [
                *self._pcm_input(),
                "-ar",
                "8000",
                "-c:a",
                "libcodec2",
                "-mode",
                str(self.mode),
                "-f",
                "codec2",
                "pipe:1",
            ],
            x.astype(np.float32).tobytes(),
        )
        if len(encoded) < self.HEADER_BYTES or struct.unpack(">I", b"\x00" + encoded[:3])[0] != 0xC0DEC2:
            raise ClassicCodecError("unexpected Codec 2 stream from ffmpeg")
        decoded = np.frombuffer(
            _run(
                self._pcm_output("codec2"),
                encoded,
            ),
            dtype=np.float32,
        )
        delay = int(round(self.DELAY_SECONDS * self.sample_rate))
        return decoded[delay:], len(encoded) - self.HEADER_BYTES, len(encoded)


def _opus_factory(
    weights=None, random_init=False, device="cpu", seed=0, bitrate: int = 6000, sample_rate: int = 16000, **kw
):
    return OpusCodec(bitrate=bitrate, sample_rate=sample_rate, **kw)


def _codec2_factory(
    weights=None, random_init=False, device="cpu", seed=0, mode: int = 3200, sample_rate: int = 16000
):
    return Codec2Codec(mode=mode, sample_rate=sample_rate)


register_codec(
    name="opus",
    family="classic",
    description="Opus (libopus via ffmpeg, application voip); bitrate= any, e.g. 6000",
    sample_rate=16000,
    channels=1,
    frame_rate=50.0,
    num_codebooks=0,
    codebook_size=0,
    source="ffmpeg + libopus",
    code_licence="BSD-3-Clause (libopus), LGPL/GPL (ffmpeg)",
    weights_licence="n/a",
    causal=True,
    bitrate_note="bitrate= parameter",
)(_opus_factory)
register_codec(
    name="codec2",
    family="classic",
    description="Codec 2 (libcodec2 via ffmpeg, 8 kHz vocoder); mode=3200 or 1200",
    sample_rate=16000,
    channels=1,
    frame_rate=50.0,
    num_codebooks=0,
    codebook_size=0,
    source="ffmpeg + libcodec2",
    code_licence="LGPL-2.1 (codec2), LGPL/GPL (ffmpeg)",
    weights_licence="n/a",
    causal=True,
    bitrate_note="mode=3200 or 1200",
)(_codec2_factory)
