"""Audio files in and out: decoding with soundfile, resampling with soxr, one channel policy.

Channel policy (stated once, applied everywhere): a mono codec gets the mean of the input's channels;
a codec with C > 1 channels gets a mono input repeated C times, and an input with at least C channels
keeps its first C. Anything else is an error. Samples are float32 in [-1, 1].

Every problem with a file raises `AudioError`, whose message names the file and the problem.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64", ".rf64", ".caf"}
)
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000
CHANNEL_POLICY = (
    "mono codecs get the mean of the input channels; multi-channel codecs get a mono input repeated, "
    "or the first C channels of a wider input"
)


class AudioError(ValueError):
    """A file could not be used as audio. `path` and `reason` are kept for error reports."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class AudioInfo:
    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _source(path: str | Path, data: bytes | None):
    return io.BytesIO(data) if data is not None else str(path)


def audio_info(path: str | Path, data: bytes | None = None) -> AudioInfo:
    """Header facts of a file (no decoding). Raises `AudioError` for unreadable or implausible files."""
    import soundfile as sf

    if data is None:
        p = Path(path)
        if not p.is_file():
            if p.is_dir():
                raise AudioError(path, "is a directory, not an audio file")
            if p.exists():
                raise AudioError(path, "not a regular file (a pipe, socket or device); give an audio file")
            raise AudioError(path, "no such file")
        if p.stat().st_size == 0:
            raise AudioError(path, "empty file (0 bytes)")
    elif len(data) == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        info = sf.info(_source(path, data))
    except Exception as err:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        raise AudioError(path, f"unreadable or not audio ({_short(err)})") from None
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(
            path,
            f"implausible sample rate {info.samplerate} Hz (accepted: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE})",
        )
    if info.frames <= 0:
        raise AudioError(path, "zero-length audio (no samples)")
    if info.channels < 1:
        raise AudioError(path, "no audio channels")
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


# a segment may end this far past the audio (manifests round their times); further is an error, not a clamp
END_TOLERANCE_SECONDS = 0.01


def _segment(info: AudioInfo, path: str | Path, start: float | None, end: float | None) -> tuple[int, int]:
    for name, value in (("start", start), ("end", end)):
        if value is not None and not math.isfinite(value):
            raise AudioError(path, f"invalid segment: {name}={value}")
    if start is not None and start >= info.duration:
        raise AudioError(
            path, f"segment start={start:g} s lies outside the audio (past its end at {info.duration:.3f} s)"
        )
    first = 0 if start is None else int(round(start * info.sample_rate))
    if first < 0 or (end is not None and end <= (start or 0.0)):
        raise AudioError(path, f"invalid segment start={start} end={end}")
    if end is not None and end > info.duration + END_TOLERANCE_SECONDS:
        raise AudioError(
            path, f"segment end={end:g} s lies past the end of the audio ({info.duration:.3f} s)"
        )
    last = info.frames if end is None else min(int(round(end * info.sample_rate)), info.frames)
    if first >= last and end is not None and end - (start or 0.0) < 1.0 / info.sample_rate:
        raise AudioError(
            path, f"segment start={start} end={end} is shorter than one sample at {info.sample_rate} Hz"
        )
    if first >= last:
        raise AudioError(
            path, f"segment start={start} end={end} lies outside the audio ({info.duration:.3f} s)"
        )
    return first, last


def declared_wav_frames(path: str | Path, data: bytes | None = None) -> int | None:
    """Frames a WAV file's data chunk declares in its header (None for other files, or a header that
    says nothing usable). libsndfile quietly reads a truncated WAV as a shorter one; this is the figure
    to compare with."""
    import struct

    try:
        head = data[: 1 << 16] if data is not None else Path(path).open("rb").read(1 << 16)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, block_align = 12, 0
    while at + 8 <= len(head):
        name, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
        if name == b"fmt " and at + 22 <= len(head):
            block_align = struct.unpack("<H", head[at + 20 : at + 22])[0]
        if name == b"data":
            if not block_align or size in (0, 0xFFFFFFFF):  # streamed WAVs write 0 or -1 there
                return None
            return size // block_align
        at += 8 + size + (size & 1)
    return None


def check_complete(path: str | Path, info: AudioInfo, data: bytes | None = None) -> None:
    """Raise AudioError when a WAV file holds fewer frames than its header declares (cut short)."""
    declared = declared_wav_frames(path, data)
    if declared is not None and declared > info.frames + 1:
        raise AudioError(
            path,
            f"truncated: the WAV header declares {declared / info.sample_rate:.3f} s, the file holds "
            f"{info.frames / info.sample_rate:.3f} s",
        )


def _check_decoded(path: str | Path, got: int, wanted: int, sample_rate: int) -> None:
    """Raise AudioError when decoding gave clearly fewer frames than the header promised (a cut MP3:
    libsndfile reports the header's length and decodes what is there). The slack (1 %, and two MP3
    frames) covers estimates of compressed formats' lengths."""
    if got < wanted - (wanted // 100 + 2304):
        raise AudioError(
            path,
            f"truncated or damaged: {got / sample_rate:.3f} s decoded of the {wanted / sample_rate:.3f} s "
            "its header promises",
        )


def check_samples(x: np.ndarray, path: str | Path) -> np.ndarray:
    if x.size == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    if not np.isfinite(x).all():
        raise AudioError(path, "audio contains NaN or inf samples")
    return x


def read_audio(
    path: str | Path, start: float | None = None, end: float | None = None, data: bytes | None = None
) -> tuple[np.ndarray, int]:
    """Decode a file (or the segment start..end, in seconds) -> (samples [C, T] float32, sample rate).

    `data` may hold the file's bytes already read (so the caller can hash and decode one read)."""
    import soundfile as sf

    info = audio_info(path, data)
    check_complete(path, info, data)
    first, last = _segment(info, path, start, end)
    try:
        x, _ = sf.read(_source(path, data), start=first, stop=last, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(path, f"decoding failed ({_short(err)})") from None
    _check_decoded(path, x.shape[0], last - first, info.sample_rate)
    return check_samples(np.ascontiguousarray(x.T), path), info.sample_rate


def to_channels(x: np.ndarray, channels: int, path: str | Path = "<audio>") -> np.ndarray:
    """Apply the channel policy: x [C_in, T] -> [channels, T]."""
    c_in = x.shape[0]
    if c_in == channels:
        return x
    if channels == 1:
        return x.mean(axis=0, keepdims=True, dtype=np.float32)
    if c_in == 1:
        return np.repeat(x, channels, axis=0)
    if c_in > channels:
        return x[:channels]
    raise AudioError(path, f"{c_in} channels cannot feed a {channels}-channel codec")


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """x [C, T] float32 at sr_in -> [C, T'] at sr_out (soxr, high quality)."""
    if sr_in == sr_out:
        return x
    import soxr

    y = soxr.resample(x.T, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, x.shape[0]).T)


def resample_batch(wav, lengths, sr_in: int, sr_out: int):
    """A padded batch wav [B, C, T] (torch, float) with `lengths` [B] samples at sr_in -> (wav [B, C, T'],
    lengths [B]) at sr_out. Each item's valid samples are resampled alone (soxr HQ, as `resample`), so an
    item gets what it would get unbatched; the result is float32, zero past each new length, on wav's device."""
    import torch

    items = [
        resample(wav[b, :, : int(n)].detach().float().cpu().numpy(), sr_in, sr_out)
        for b, n in enumerate(lengths.tolist())
    ]
    new_lengths = torch.tensor([item.shape[-1] for item in items], dtype=torch.long)
    if int(new_lengths.min()) < 1:
        raise ValueError(
            f"audio too short to resample from {sr_in} Hz to {sr_out} Hz (lengths {lengths.tolist()})"
        )
    out = torch.zeros(wav.shape[0], wav.shape[1], int(new_lengths.max()))
    for b, item in enumerate(items):
        out[b, :, : item.shape[-1]] = torch.from_numpy(item)
    return out.to(wav.device), new_lengths.to(wav.device)


def load_audio(
    path: str | Path,
    sample_rate: int,
    channels: int = 1,
    start: float | None = None,
    end: float | None = None,
    data: bytes | None = None,
) -> np.ndarray:
    """Decode, apply the channel policy and resample: -> [channels, T] float32 at `sample_rate`."""
    x, sr = read_audio(path, start, end, data)
    return check_samples(resample(to_channels(x, channels, path), sr, sample_rate), path)


def stream_audio(
    path: str | Path,
    sample_rate: int,
    channels: int = 1,
    start: float | None = None,
    end: float | None = None,
    block_seconds: float = 30.0,
) -> Iterator[np.ndarray]:
    """`load_audio` in blocks of about `block_seconds` (bounded memory for long files). The blocks,
    concatenated, equal `load_audio`'s result exactly (soxr's stream equals its one-shot resample)."""
    import soundfile as sf
    import soxr

    info = audio_info(path)
    check_complete(path, info)
    first, last = _segment(info, path, start, end)
    block = max(int(block_seconds * info.sample_rate), 1)
    stream = (
        None
        if info.sample_rate == sample_rate
        else soxr.ResampleStream(info.sample_rate, sample_rate, channels, dtype="float32", quality="HQ")
    )
    produced = False
    try:
        with sf.SoundFile(str(path)) as fh:
            fh.seek(first)
            remaining = last - first
            while remaining > 0:
                n = min(block, remaining)
                x = fh.read(n, dtype="float32", always_2d=True)
                if x.shape[0] == 0:
                    break
                remaining -= x.shape[0]
                x = check_samples(to_channels(np.ascontiguousarray(x.T), channels, path), path)
                if stream is not None:
                    y = stream.resample_chunk(np.ascontiguousarray(x.T), last=remaining <= 0)
                    x = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, channels).T)
                if x.shape[1]:
                    produced = True
                    yield x
            _check_decoded(path, last - first - remaining, last - first, info.sample_rate)
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(path, f"decoding failed ({_short(err)})") from None
    if not produced:
        raise AudioError(path, "zero-length audio (no samples)")


def _subtype(path: str | Path) -> str | None:
    return "PCM_16" if str(path).lower().endswith((".wav", ".flac")) else None


def audio_format(path: str | Path) -> str:
    """The soundfile format named by `path`'s extension ("WAV" for out.wav); ValueError naming the file
    for an extension that is not an audio format soundfile writes."""
    import soundfile as sf

    suffix = Path(path).suffix.lstrip(".").upper()
    formats = sf.available_formats()
    if suffix not in formats or suffix == "RAW":
        raise ValueError(
            f"{path}: cannot tell the audio format from the extension {Path(path).suffix or '(none)'!r}; "
            "use .wav, .flac or .ogg"
        )
    return suffix


def write_audio(path: str | Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write wav [C, T] float in [-1, 1] (clipped) as a 16-bit PCM file chosen by the extension, through a
    temporary file renamed at the end: an existing file is replaced whole or left as it was."""
    import soundfile as sf

    from codeclab._files import atomic_write

    fmt = audio_format(path)
    x = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: sf.write(str(tmp), x.T, sample_rate, subtype=_subtype(path), format=fmt))


def write_audio_blocks(
    path: str | Path, blocks: Iterable[np.ndarray], sample_rate: int, channels: int
) -> int:
    """Write blocks [C, n] one after another (bounded memory) as `write_audio` would write their
    concatenation, through a temporary file renamed once the last block is in; returns the samples
    written."""
    import soundfile as sf

    from codeclab._files import atomic_write

    fmt = audio_format(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    written = 0

    def fill(tmp: Path) -> None:
        nonlocal written
        with sf.SoundFile(str(tmp), "w", sample_rate, channels, subtype=_subtype(path), format=fmt) as fh:
            for block in blocks:
                x = np.clip(np.asarray(block, dtype=np.float32), -1.0, 1.0)
                fh.write(x.T)
                written += x.shape[1]

    atomic_write(path, fill)
    return written
