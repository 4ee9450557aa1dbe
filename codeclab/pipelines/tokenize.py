"""Corpus tokenization: audio files -> token store, resumable, batched, parallel, sharded.

Pipeline: `discover` resolves the inputs into items; shard S of N keeps the items whose crc32(id) % N == S;
worker processes (a torch DataLoader) read, hash, decode, mix channels and resample; the main process
groups decoded items into length-bucketed batches (padding plus lengths, so each item gets exactly its
unbatched codes), encodes them and writes rows to Parquet parts. Items longer than `long_seconds` are
streamed from disk and encoded in chunks (`codeclab.codecs.chunked`), so memory stays bounded.

Failures of single files are written to the store's error log and never stop the run.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codeclab._launch import launch_place
from codeclab._version import __version__
from codeclab.audio.io import (
    CHANNEL_POLICY,
    AudioError,
)
from codeclab.catalog.fingerprint import fingerprint
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec
from codeclab.corpora.manifest import AudioItem, discover
from codeclab.pipelines.decode import DecodeDataset, decoded_batches, encode_long, length_buckets
from codeclab.pipelines.store_plan import check_same_sources, plan_against_store, settle_store
from codeclab.tokens.store import ShardWriter, TokenRecord, codes_dtype

log = logging.getLogger("codeclab.tokenize")

# moved to pipelines/decode.py and pipelines/store_plan.py; still importable from here
__all__ = [
    "DecodeDataset",
    "TokenizeJob",
    "TokenizeOptions",
    "TokenizeReport",
    "check_same_sources",
    "encode_long",
    "length_buckets",
    "plan_shard",
    "tokenize_corpus",
]


@dataclass
class TokenizeOptions:
    inputs: list[str]
    out: Path
    codec: CodecRef
    n_q: int | None = None
    device: str = "cpu"
    batch_seconds: float | None = None  # padded audio per batch; default 60 s on CPU, 1200 s on CUDA
    workers: int = 1
    shard: tuple[int, int] | None = None  # (index, count); default from torchrun's RANK/WORLD_SIZE
    resume: bool = False
    retry_errors: bool = False
    long_seconds: float = 600.0
    chunk_seconds: float = 120.0
    bucket_seconds: tuple[float, ...] = ()  # peers: pad items to these lengths (torch.compile'd models)
    flush_items: int = 2000
    flush_seconds: float = 120.0
    worker_timeout: float = 900.0  # seconds without a decoded item before the workers count as hung

    def __post_init__(self) -> None:
        """Every number in range, with the option named (a negative --workers was taken silently)."""
        checks = {
            "--batch-seconds": self.batch_seconds is None or self.batch_seconds > 0,
            "--workers": self.workers >= 0,
            "--long-seconds": self.long_seconds > 0,
            "--chunk-seconds": self.chunk_seconds > 0,
            "--bucket-seconds": all(b > 0 for b in self.bucket_seconds),
            "--flush-items": self.flush_items >= 1,
            "--flush-seconds": self.flush_seconds > 0,
            "--worker-timeout": self.worker_timeout >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"{bad[0]} must be {'at least 0' if bad[0] in ('--workers', '--worker-timeout') else 'positive'}"
            )


def load_tokenize_codec(spec: CodecRef, device: str, bucket_seconds: tuple[float, ...] = ()) -> AudioCodec:
    """The codec a tokenize run encodes with; `bucket_seconds` (--bucket-seconds) pads a peer's items to
    those lengths (`pad_to_buckets`), and is refused for a codec that encodes whole batches."""
    codec = spec.load(device)
    if bucket_seconds:
        pad_to_buckets = getattr(codec, "pad_to_buckets", None)
        if pad_to_buckets is None:
            raise ValueError(
                f"--bucket-seconds: {codec.name} encodes padded batches itself; only peers that code item "
                "by item pad to buckets (docs/peers.md)"
            )
        pad_to_buckets(bucket_seconds)
    return codec


class WorkerError(RuntimeError):
    """The decode workers died or hung; the items finished before are saved (rerun with --resume)."""


def is_worker_death(err: BaseException) -> bool:
    """True for the error torch raises (from its SIGCHLD handler, wherever the main process is) when a
    DataLoader worker dies: it is never an item's failure, and must end the run."""
    return isinstance(err, RuntimeError) and "DataLoader worker" in str(err)


def _worker_error(err: BaseException, report: TokenizeReport) -> WorkerError:
    return WorkerError(
        f"the decode workers stopped: {err}. The {report.tokenized} items finished in this run "
        "are saved; rerun with --resume to continue (with --workers 0 to find a file that "
        "crashes or hangs the decoder)"
    )


@dataclass
class TokenizeReport:
    store: Path
    shard: tuple[int, int]
    items: int = 0  # items of this shard
    skipped: int = 0  # already finished before this run
    failed_before: int = 0  # of the skipped, items that failed in an earlier run
    tokenized: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    profile: dict[str, float] = field(
        default_factory=lambda: {"read+decode": 0.0, "resample": 0.0, "model": 0.0, "write": 0.0}
    )
    merged: bool = False

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def shard_from_env() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) under torchrun, (SLURM_PROCID, SLURM_NTASKS) under srun, else (0, 1)."""
    place = launch_place(slurm=True)
    return place.rank, place.world


def in_shard(item_id: str, shard: int, num_shards: int) -> bool:
    return num_shards == 1 or zlib.crc32(item_id.encode("utf-8")) % num_shards == shard


def plan_shard(inputs: list[str], shard: int, num_shards: int) -> list[AudioItem]:
    """The items of shard `shard` of `num_shards`, sorted by id; the inputs are streamed and only this
    shard's items are held (a rank plans its share of a 36 M-row manifest, not all of it)."""
    return discover(
        inputs, keep=None if num_shards == 1 else lambda item_id: in_shard(item_id, shard, num_shards)
    )


def _identity(x):
    return x


class TokenizeJob:
    """Runs one shard of a tokenization job; see `tokenize_corpus`."""

    def __init__(
        self, options: TokenizeOptions, on_progress: Callable[[TokenizeReport, int], None] | None = None
    ) -> None:
        self.options = options
        self.on_progress = on_progress or (lambda report, total: None)

    def _device(self) -> str:
        device, place = self.options.device, launch_place(slurm=True)
        return f"cuda:{place.local_rank}" if device == "cuda" and place.launched else device

    def metadata(self, codec: AudioCodec, n_q: int) -> dict[str, Any]:
        return {
            "codec": fingerprint(codec, self.options.codec),
            "sample_rate": codec.sample_rate,
            "channels": codec.channels,
            "hop_length": codec.hop_length,
            "frame_rate": codec.frame_rate,
            "n_q": n_q,
            "codebook_size": codec.codebook_size,
            "codes_dtype": codes_dtype(codec.codebook_size),
            "channel_policy": CHANNEL_POLICY,
            "bucket_seconds": list(self.options.bucket_seconds) or None,
            "codeclab_version": __version__,
        }

    def run(self) -> TokenizeReport:
        opts = self.options
        shard, num_shards = opts.shard or shard_from_env()
        report = TokenizeReport(store=Path(opts.out), shard=(shard, num_shards))
        begin = time.perf_counter()

        items = plan_shard(opts.inputs, shard, num_shards)
        report.items = len(items)
        store = Path(opts.out)
        plan = plan_against_store(store, items, shard, num_shards, opts.resume, opts.retry_errors)
        todo = plan.todo
        report.skipped, report.failed_before = plan.skipped, plan.failed_before

        self._total, self._begin = len(items), begin
        self.on_progress(report, self._total)  # the total is known before the codec loads
        device = self._device()
        codec = load_tokenize_codec(opts.codec, device, opts.bucket_seconds)
        n_q = codec.check_n_q(opts.n_q)
        writer = ShardWriter(store, self.metadata(codec, n_q), shard, num_shards)
        log.info("channel policy: %s (codec has %d channel(s))", CHANNEL_POLICY, codec.channels)
        batch_seconds = opts.batch_seconds or (1200.0 if device.startswith("cuda") else 60.0)
        max_samples = int(batch_seconds * codec.sample_rate)

        if plan.finished:
            writer.close()
            report.merged = settle_store(store, num_shards, wrote=False)  # repairs a killed merge
            report.wall_seconds = time.perf_counter() - begin
            return report  # a finished shard: nothing to do, nothing rewritten
        try:
            if todo:
                try:
                    self._process(todo, codec, n_q, writer, report, max_samples)
                except RuntimeError as err:
                    # a worker's death raised while the main process was busy elsewhere (encoding,
                    # writing): stop here, before the next read of the shared result pipe, which a worker
                    # killed while writing leaves holding half a message (a read would never return)
                    if not is_worker_death(err) or isinstance(err, WorkerError):
                        raise
                    writer.flush()
                    raise _worker_error(err, report) from err
        except BaseException:
            writer.close()  # release the shard's lock (finish() releases it on success)
            raise
        writer.finish(
            {
                "items": report.items,
                "tokenized": report.tokenized,
                "failed": report.failed,
                "skipped": report.skipped,
                "audio_seconds": report.audio_seconds,
                "codeclab_version": __version__,
            }
        )
        report.merged = settle_store(store, num_shards, wrote=True)
        report.wall_seconds = time.perf_counter() - begin
        self.on_progress(report, self._total)  # the bar ends on the summary's figures
        return report

    def _process(self, todo, codec, n_q, writer, report, max_samples) -> None:
        opts = self.options
        dataset = DecodeDataset(todo, codec.sample_rate, codec.channels, opts.long_seconds)
        workers = max(0, opts.workers)
        loader_args: dict[str, Any] = {"batch_size": None, "num_workers": workers, "collate_fn": _identity}
        if workers:
            loader_args["prefetch_factor"] = 4
            loader_args["multiprocessing_context"] = (
                "spawn" if str(codec.device).startswith("cuda") else "fork"
            )
            loader_args["timeout"] = opts.worker_timeout
        loader = torch.utils.data.DataLoader(dataset, **loader_args)
        pending: list[dict[str, Any]] = []
        pending_samples = 0
        window = 4 * max_samples  # decoded audio gathered before bucketing by length
        started = self._begin  # one clock for the bar and the summary: the whole job's wall time
        for rec in self._records(loader, writer, report, workers):
            item = todo[rec["index"]]
            if "error" in rec:
                writer.add_error(item.id, item.location, rec["error"], item.start, item.end)
                report.failed += 1
            elif rec.get("long"):
                self._encode_long(item, codec, n_q, writer, report)
            else:
                report.profile["read+decode"] += rec["decode_s"]
                report.profile["resample"] += rec["resample_s"]
                pending.append(rec)
                pending_samples += rec["audio"].shape[1]
                if pending_samples >= window:
                    self._encode_pending(pending, todo, codec, n_q, writer, report, max_samples)
                    pending, pending_samples = [], 0
            report.wall_seconds = time.perf_counter() - started
            self._maybe_flush(writer, report)
        if pending:
            self._encode_pending(pending, todo, codec, n_q, writer, report, max_samples)
        report.wall_seconds = time.perf_counter() - started
        self.on_progress(report, self._total)

    def _records(self, loader, writer: ShardWriter, report: TokenizeReport, workers: int) -> Iterator[dict]:
        """The loader's records; a dead or hung worker becomes a `WorkerError` after the finished items
        are flushed to the store."""
        iterator = iter(loader)
        while True:
            try:
                rec = next(iterator)
            except StopIteration:
                return
            except RuntimeError as err:
                if not workers:
                    raise
                writer.flush()
                raise _worker_error(err, report) from err
            yield rec

    def _maybe_flush(self, writer: ShardWriter, report: TokenizeReport) -> None:
        opts = self.options
        if writer.buffered >= opts.flush_items or (
            writer.buffered and time.monotonic() - writer.last_flush > opts.flush_seconds
        ):
            start = time.perf_counter()
            writer.flush()
            report.profile["write"] += time.perf_counter() - start

    def _record(
        self, item: AudioItem, codes: np.ndarray, seconds: float, sha: str, sample_rate: int
    ) -> TokenRecord:
        return TokenRecord(
            item.id,
            codes,
            item.location,
            sha,
            seconds,
            sample_rate,
            item.start,
            item.end,
            item.text,
            meta=dict(item.meta),
        )

    def _encode_pending(self, pending, todo, codec, n_q, writer, report, max_samples) -> None:
        for batch in decoded_batches(pending, max_samples):
            start = time.perf_counter()
            try:
                results = self._encode_batch(batch, codec, n_q)
            except Exception as err:  # e.g. out of memory: fall back to one item at a time
                if is_worker_death(err):
                    raise
                log.warning("batch of %d failed (%s); encoding its items one by one", len(batch), err)
                results = []
                for rec in batch:
                    try:
                        results.extend(self._encode_batch([rec], codec, n_q))
                    except Exception as item_err:
                        if is_worker_death(item_err):
                            raise
                        results.append(item_err)
            report.profile["model"] += time.perf_counter() - start
            for rec, result in zip(batch, results):
                item = todo[rec["index"]]
                if isinstance(result, Exception):
                    writer.add_error(
                        item.id,
                        item.location,
                        f"encoding failed: {type(result).__name__}: {result}",
                        item.start,
                        item.end,
                    )
                    report.failed += 1
                    continue
                seconds = rec["audio"].shape[1] / codec.sample_rate
                writer.add(self._record(item, result, seconds, rec["sha256"], rec["sample_rate"]))
                report.tokenized += 1
                report.audio_seconds += seconds
            self._maybe_flush(writer, report)
            self.on_progress(report, self._total)

    @staticmethod
    def _encode_batch(batch: list[dict[str, Any]], codec: AudioCodec, n_q: int) -> list[np.ndarray]:
        lengths = [rec["audio"].shape[1] for rec in batch]
        wav = torch.zeros(len(batch), codec.channels, max(lengths))
        for i, rec in enumerate(batch):
            wav[i, :, : lengths[i]] = torch.as_tensor(rec["audio"])
        encoded = codec.encode(wav.to(codec.device), lengths=torch.tensor(lengths), n_q=n_q)
        return [codes.cpu().numpy() for codes in encoded.items()]

    def _encode_long(
        self, item: AudioItem, codec: AudioCodec, n_q: int, writer: ShardWriter, report: TokenizeReport
    ) -> None:
        start = time.perf_counter()
        try:
            codes, seconds, sha, rate = encode_long(
                item.path, item.start, item.end, codec, n_q, self.options.chunk_seconds
            )
        except AudioError as err:
            writer.add_error(item.id, item.path, err.reason, item.start, item.end)
            report.failed += 1
            return
        except Exception as err:
            if is_worker_death(err):
                raise
            writer.add_error(
                item.id, item.path, f"encoding failed: {type(err).__name__}: {err}", item.start, item.end
            )
            report.failed += 1
            return
        report.profile["model"] += time.perf_counter() - start
        writer.add(self._record(item, codes, seconds, sha, rate))
        report.tokenized += 1
        report.audio_seconds += seconds
        self._maybe_flush(writer, report)
        self.on_progress(report, self._total)


def tokenize_corpus(
    options: TokenizeOptions, on_progress: Callable[[TokenizeReport, int], None] | None = None
) -> TokenizeReport:
    """Tokenize `options.inputs` into the store `options.out` (one shard of it); see the module doc."""
    return TokenizeJob(options, on_progress).run()


Tokenizer = TokenizeJob  # the name before 0.2: a corpus job, not a tokenizer
