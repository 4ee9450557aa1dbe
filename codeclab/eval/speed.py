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

from codeclab._progress import progress_task
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

    def timed(fn, advance):
        fn()  # warm-up
        advance()
        times = []
        for _ in range(reps):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            out = fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - start)
            advance()
        return statistics.median(times), out

    with progress_task(f"speed {codec.name}", 2 * (reps + 1), "runs") as advance:
        base = _reset_peak(dev)
        encode_s, encoded = timed(lambda: codec.encode(wav), advance)
        encode_peak = _peak_mib(dev, base)
        base = _reset_peak(dev)
        decode_s, _ = timed(lambda: codec.decode(encoded), advance)
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


@dataclass
class StreamSpeedResult:
    """Streaming speed of one causal codec: per-chunk compute times (ms) of one stream's encode_step and
    decode_step on `chunk_ms` chunks, the real-time factor (compute time / audio time, < 1 keeps up), and
    the most streams one batched process keeps in real time (95th-percentile chunk time under the chunk's
    duration), with the timings of every batch size tried."""

    codec: str
    device: str
    chunk_ms: float
    encode_ms: float
    decode_ms: float
    p95_ms: float
    rtf: float
    max_realtime_streams: int
    by_streams: list[dict]
    latency_ms: dict | None
    random_init: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _chunk_times(
    codec: AudioCodec, streams: int, chunk: int, seconds: float, dev: torch.device
) -> list[tuple]:
    """(encode s, decode s) per chunk of `streams` batched streams over `seconds` of speech (warm-up
    chunks dropped)."""
    wav = torch.stack([synthetic_speech(seconds, codec.sample_rate, seed=i % 16) for i in range(streams)])
    wav = wav.repeat(1, codec.channels, 1).to(dev) if codec.channels > 1 else wav.to(dev)
    times = []
    with codec.streaming(batch_size=streams) as stream:
        for start in range(0, wav.shape[-1] - chunk + 1, chunk):
            t0 = time.perf_counter()
            codes = stream.encode_step(wav[..., start : start + chunk])
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t1 = time.perf_counter()
            stream.decode_step(codes)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append((t1 - t0, time.perf_counter() - t1))
    return times[2:]  # the first chunks warm up allocators and caches


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def measure_stream_speed(
    codec: AudioCodec,
    chunk_ms: float = 80.0,
    seconds: float = 4.0,
    device: str | None = None,
    max_streams: int = 1024,
) -> StreamSpeedResult:
    """Stream `seconds` of speech in `chunk_ms` chunks through encode_step and decode_step: one stream,
    then batches of 2, 4, 8, ... streams until a batch's 95th-percentile chunk time exceeds the chunk's
    duration (or `max_streams`). Raises StreamingUnsupported for a codec that cannot stream."""
    dev = torch.device(device) if device else codec.device
    chunk = max(int(round(chunk_ms / 1000 * codec.sample_rate)), 1)
    budget = chunk / codec.sample_rate
    rows, streams, best = [], 1, 0
    single = None
    while streams <= max_streams:
        times = _chunk_times(codec, streams, chunk, seconds, dev)
        totals = [e + d for e, d in times]
        row = {
            "streams": streams,
            "encode_ms": 1000 * statistics.median(e for e, _ in times),
            "decode_ms": 1000 * statistics.median(d for _, d in times),
            "p95_ms": 1000 * _p95(totals),
            "realtime": _p95(totals) < budget,
        }
        rows.append(row)
        single = single or row
        if not row["realtime"]:
            break
        best = streams
        streams *= 2
    latency = getattr(codec, "latency", None)
    return StreamSpeedResult(
        codec=codec.name,
        device=str(dev),
        chunk_ms=1000 * budget,
        encode_ms=single["encode_ms"],
        decode_ms=single["decode_ms"],
        p95_ms=single["p95_ms"],
        rtf=(single["encode_ms"] + single["decode_ms"]) / (1000 * budget),
        max_realtime_streams=best,
        by_streams=rows,
        latency_ms=latency.as_dict() if latency is not None else None,
        random_init=codec.random_init,
    )
