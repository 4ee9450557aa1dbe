"""Encode / decode speed and peak memory of a codec on one device.

x real time = seconds of audio processed per second of wall time. Peak memory is the increase of the
process's peak resident memory during the call on the CPU (Linux: the peak is reset through
/proc/self/clear_refs before each measurement) and the peak of allocated CUDA memory on a GPU.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.base import AudioCodec


@dataclass
class SpeedResult:
    codec: str
    device: str
    batch: int
    seconds: float
    encode_xrt: float
    decode_xrt: float
    frames_per_second: float
    encode_peak_mib: float | None
    decode_peak_mib: float | None
    random_init: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _vm_hwm_kib() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak(device: torch.device) -> int | None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _vm_hwm_kib()


def _peak_mib(device: torch.device, base: int | None) -> float | None:
    if base is None:
        return None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    now = _vm_hwm_kib()
    return None if now is None else max(0, now - base) / 1024


def measure_speed(
    codec: AudioCodec, seconds: float = 10.0, batch: int = 4, reps: int = 3, device: str | None = None
) -> SpeedResult:
    """Time `reps` encodes and decodes of `batch` speech-like clips of `seconds` (after a warm-up); medians."""
    dev = torch.device(device) if device else codec.device
    wav = torch.stack([synthetic_speech(seconds, codec.sample_rate, seed=i) for i in range(batch)])
    if codec.channels > 1:
        wav = wav.repeat(1, codec.channels, 1)
    wav = wav.to(dev)

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(reps):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            out = fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - start)
        return statistics.median(times), out

    base = _reset_peak(dev)
    encode_s, encoded = timed(lambda: codec.encode(wav))
    encode_peak = _peak_mib(dev, base)
    base = _reset_peak(dev)
    decode_s, _ = timed(lambda: codec.decode(encoded))
    decode_peak = _peak_mib(dev, base)
    audio = batch * seconds
    frames = float(encoded.lengths.sum())
    return SpeedResult(
        codec=codec.name,
        device=str(dev),
        batch=batch,
        seconds=seconds,
        encode_xrt=audio / encode_s,
        decode_xrt=audio / decode_s,
        frames_per_second=frames / encode_s,
        encode_peak_mib=encode_peak,
        decode_peak_mib=decode_peak,
        random_init=codec.random_init,
    )
