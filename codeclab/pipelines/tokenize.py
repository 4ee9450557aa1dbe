"""Corpus tokenization: audio files -> token store, resumable, batched, parallel, sharded.

Pipeline: `discover` resolves the inputs into items; shard S of N keeps the items whose crc32(id) % N == S;
worker processes (a torch DataLoader) read, hash, decode, mix channels and resample; the main process
groups decoded items into length-bucketed batches (padding plus lengths, so each item gets exactly its
unbatched codes), encodes them and writes rows to Parquet parts. Items longer than `long_seconds` are
streamed from disk and encoded in chunks (`codeclab.codecs.chunked`), so memory stays bounded.

Failures of single files are written to the store's error log and never stop the run.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codeclab._files import sha256_file
from codeclab._launch import launch_place
from codeclab._version import __version__
from codeclab.audio.io import (
    CHANNEL_POLICY,
    AudioError,
    audio_info,
    load_audio,
    read_audio,
    resample,
    stream_audio,
    to_channels,
)
from codeclab.catalog.fingerprint import fingerprint
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.chunked import encode_stream
from codeclab.corpora.manifest import AudioItem, discover
from codeclab.corpora.members import MemberError
from codeclab.tokens.store import (
    ShardWriter,
    StoreError,
    TokenRecord,
    check_store_target,
    codes_dtype,
    finished_ids,
    finished_sources,
    index_is_fresh,
    merge,
    shard_name,
    shards_done,
)

log = logging.getLogger("codeclab.tokenize")


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
            "--flush-items": self.flush_items >= 1,
            "--flush-seconds": self.flush_seconds > 0,
            "--worker-timeout": self.worker_timeout >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"{bad[0]} must be {'at least 0' if bad[0] in ('--workers', '--worker-timeout') else 'positive'}"
            )


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


class DecodeDataset(torch.utils.data.Dataset):
    """Item i -> dict with `audio` [C, T] float32 at the codec's rate, or `error`, or `long` (to be
    streamed by the main process). Never raises: every failure becomes an `error` entry."""

    def __init__(self, items: list[AudioItem], sample_rate: int, channels: int, long_seconds: float) -> None:
        self.items, self.sample_rate, self.channels, self.long_seconds = (
            items,
            sample_rate,
            channels,
            long_seconds,
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        start = time.perf_counter()
        where = item.location
        try:
            data = None
            if item.member is None:  # a file: its header says whether it is long, before it is read
                info = audio_info(item.path)
            else:  # audio inside a container is read whole
                data = item.read_bytes()
                info = audio_info(where, data)
            seconds = (item.end if item.end is not None else info.duration) - (item.start or 0.0)
            if seconds > self.long_seconds and item.member is None:
                return {"index": index, "long": True}
            data = item.read_bytes() if data is None else data
            sha = hashlib.sha256(data).hexdigest()
            x, sr = read_audio(where, item.start, item.end, data=data)
            decoded = time.perf_counter()
            x = resample(to_channels(x, self.channels, where), sr, self.sample_rate)
            if x.shape[1] == 0:
                raise AudioError(where, "zero-length audio after resampling")
            return {
                "index": index,
                "audio": x,
                "sha256": sha,
                "sample_rate": sr,
                "decode_s": decoded - start,
                "resample_s": time.perf_counter() - decoded,
            }
        except MemberError as err:
            return {"index": index, "error": str(err)}
        except AudioError as err:
            return {"index": index, "error": err.reason}
        except Exception as err:  # an unexpected failure must not kill the worker or the run
            return {"index": index, "error": f"unexpected {type(err).__name__}: {err}"}


def _identity(x):
    return x


def length_buckets(lengths: list[int], max_samples: int) -> list[list[int]]:
    """Positions of `lengths` grouped into length-bucketed batches: sorted by length (ties in order), each
    batch's padded size (count x longest) <= max_samples. The local engine and the Ray actors both batch so."""
    batches: list[list[int]] = []
    current: list[int] = []
    for position in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if current and (len(current) + 1) * lengths[position] > max_samples:
            batches.append(current)
            current = []
        current.append(position)
    if current:
        batches.append(current)
    return batches


def _batches(pending: list[dict[str, Any]], max_samples: int) -> list[list[dict[str, Any]]]:
    """Length-bucketed batches of decoded records (see `length_buckets`)."""
    groups = length_buckets([rec["audio"].shape[1] for rec in pending], max_samples)
    return [[pending[i] for i in group] for group in groups]


def encode_long(
    path: str, start: float | None, end: float | None, codec: AudioCodec, n_q: int, chunk_seconds: float
) -> tuple[np.ndarray, float, str, int]:
    """A file over the long-file limit -> (codes [n_q, F], seconds, sha256, source rate): streamed from disk
    and encoded in chunks (bounded memory); a codec without a bounded encoder context is encoded whole.
    Raises AudioError for an unusable file (others for encoding failures)."""
    sha = sha256_file(path)
    info = audio_info(path)
    if codec.encoder_context() is not None:
        encoded = encode_stream(
            codec,
            stream_audio(path, codec.sample_rate, codec.channels, start, end),
            n_q=n_q,
            chunk_seconds=chunk_seconds,
        )
    else:  # unknown context: whole pass (memory grows with the file)
        log.warning("%s: %s has no bounded encoder context; encoding the long file whole", path, codec.name)
        wav = torch.as_tensor(load_audio(path, codec.sample_rate, codec.channels, start, end))
        encoded = codec.encode(wav[None].to(codec.device), n_q=n_q)
    seconds = int(encoded.audio_lengths[0]) / codec.sample_rate
    return encoded.items()[0].cpu().numpy(), seconds, sha, info.sample_rate


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
            "codeclab_version": __version__,
        }

    def run(self) -> TokenizeReport:
        opts = self.options
        shard, num_shards = opts.shard or shard_from_env()
        report = TokenizeReport(store=Path(opts.out), shard=(shard, num_shards))
        begin = time.perf_counter()

        check_store_target(Path(opts.out))  # before any work: --out must be a store, or new, or empty
        items = plan_shard(opts.inputs, shard, num_shards)
        report.items = len(items)
        store = Path(opts.out)
        has_store = (store / "tokens.json").is_file()
        done, failed = finished_ids(store) if has_store else (set(), set())
        finished = done | (set() if opts.retry_errors else failed)
        if has_store and done:
            check_same_sources(store, [it for it in items if it.id in done])
        todo = [it for it in items if it.id not in finished]
        report.skipped = len(items) - len(todo)
        report.failed_before = 0 if opts.retry_errors else sum(1 for it in items if it.id in failed)
        if has_store and todo and report.skipped and not opts.resume:
            raise StoreError(
                f"{store}: already holds {report.skipped} of this shard's {len(items)} items; pass --resume to "
                "finish the rest, or choose a new --out"
            )

        self._total, self._begin = len(items), begin
        self.on_progress(report, self._total)  # the total is known before the codec loads
        device = self._device()
        codec = opts.codec.load(device)
        n_q = codec.check_n_q(opts.n_q)
        writer = ShardWriter(store, self.metadata(codec, n_q), shard, num_shards)
        log.info("channel policy: %s (codec has %d channel(s))", CHANNEL_POLICY, codec.channels)
        batch_seconds = opts.batch_seconds or (1200.0 if device.startswith("cuda") else 60.0)
        max_samples = int(batch_seconds * codec.sample_rate)

        done_marker = store / "done" / f"shard-{shard_name(shard, num_shards)}.json"
        if not todo and done_marker.is_file():
            writer.close()
            if shards_done(store, num_shards) and not index_is_fresh(store):
                merge(store)  # the repair path: a run killed during the merge
            report.merged = index_is_fresh(store)
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
        if shards_done(store, num_shards):
            merge(store)
            report.merged = True
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
        for batch in _batches(pending, max_samples):
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


def check_same_sources(store: Path, items: list[AudioItem], shown: int = 3) -> None:
    """Raise StoreError when ids this run would skip as finished hold other audio in the store (another
    file, or another segment of it): a run keyed by id alone would keep the other file's codes under
    this run's ids and exit 0. A recorded path that resolves to the item's file is the same source; a
    different path counts as the same source only when the file's sha256 matches the recorded one."""
    recorded = finished_sources(store, {it.id for it in items})
    clashes: list[str] = []
    for item in items:
        path, sha, start, end = recorded.get(item.id, (None, None, None, None))
        if path is None:
            continue
        same_segment = (start, end) == (item.start, item.end)
        if item.member is not None:  # audio inside a container: the same container and member
            same_file = path == item.location or (
                _same_path(path.split("::")[0], item.path) and path.endswith("::" + item.member.describe())
            )
        else:
            same_file = _same_path(path, item.path) or (
                Path(item.path).is_file() and sha == _sha256_or_none(item.path)
            )
        if not (same_file and same_segment):
            clashes.append(f"{item.id} (stored from {path}, this run has {item.describe()})")
    if clashes:
        raise StoreError(
            f"{store}: {len(clashes)} ids of this run already hold other audio in the store: "
            + "; ".join(clashes[:shown])
            + (" ..." if len(clashes) > shown else "")
            + ". Choose another --out, or give the inputs distinct ids (a manifest with an id column, or "
            "the common parent directory as the input)"
        )


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _sha256_or_none(path: str) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def tokenize_corpus(
    options: TokenizeOptions, on_progress: Callable[[TokenizeReport, int], None] | None = None
) -> TokenizeReport:
    """Tokenize `options.inputs` into the store `options.out` (one shard of it); see the module doc."""
    return TokenizeJob(options, on_progress).run()


Tokenizer = TokenizeJob  # the name before 0.2: a corpus job, not a tokenizer
