"""`codeclab tokenize --engine ray`: the same job on a Ray cluster, with Ray Data as the engine.

The driver plans once (the inputs listed, every finished item skipped: what is done is known per item),
then runs one Ray Data pipeline over the items left:

    items -> map (CPU tasks: read, hash, decode, mix, resample) -> map_batches (an actor pool: each actor
    loads the codec once, on a fraction of a GPU, and encodes length-bucketed batches) -> the driver

and the driver writes every result through the store's own writer (atomic parts, checksums, the error
log) and merges once. Codes are small (kilobytes per minute of audio), so one writer keeps up with many
GPUs. A dead task or actor is retried by Ray (actors restart, their batch runs again); a block that still
fails is left out by the pipeline, and its items are run again one by one; an item lost twice goes to
`errors.jsonl` with that reason. Nothing is dropped without a word.

Ray is an optional extra (`codeclab[ray]`), imported here only.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codeclab._optional import optional_import
from codeclab.corpora.items import AudioItem
from codeclab.corpora.members import Member
from codeclab.pipelines.tokenize import (
    DecodeDataset,
    TokenizeJob,
    TokenizeOptions,
    TokenizeReport,
    encode_long,
    length_buckets,
    load_tokenize_codec,
)
from codeclab.tokens.store import ShardWriter

LOST_REASON = "lost twice: the Ray worker encoding it died both times (see the Ray logs)"


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local cluster on 127.0.0.1; "auto"; "ray://HOST:PORT"
    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    batch_items: int = 64  # items per actor call (the actor buckets them by length)
    threads_per_actor: int | None = None  # torch threads of an actor (default: its CPUs, at least 1)
    die_once_flag: str | None = (
        None  # tests only: the first actor call to find no such file makes it and exits
    )


def _item_row(index: int, item: AudioItem) -> dict[str, Any]:
    member = item.member
    return {
        "index": index,
        "id": item.id,
        "path": item.path,
        "start": math.nan if item.start is None else item.start,
        "end": math.nan if item.end is None else item.end,
        "member_kind": "" if member is None else member.kind,
        "member_name": "" if member is None else member.name,
        "member_offset": 0 if member is None else member.offset,
        "member_size": 0 if member is None else member.size,
    }


def _row_item(row: dict[str, Any]) -> AudioItem:
    member = (
        Member(row["member_kind"], row["member_name"], int(row["member_offset"]), int(row["member_size"]))
        if row["member_kind"]
        else None
    )
    start, end = (None if math.isnan(row[k]) else float(row[k]) for k in ("start", "end"))
    return AudioItem(str(row["id"]), str(row["path"]), start, end, member=member)


class DecodeTask:
    """A CPU task: one item row -> the row with `audio` [C, T] float32, or `error`, or `long`."""

    def __init__(self, sample_rate: int, channels: int, long_seconds: float) -> None:
        self.sample_rate, self.channels, self.long_seconds = sample_rate, channels, long_seconds

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        item = _row_item(row)
        result = DecodeDataset([item], self.sample_rate, self.channels, self.long_seconds)[0]
        out = {"index": row["index"], "error": result.get("error", ""), "long": bool(result.get("long"))}
        out["audio"] = result.get("audio", np.zeros((self.channels, 0), dtype=np.float32))
        out["sha256"] = result.get("sha256", "")
        out["sample_rate"] = int(result.get("sample_rate", 0))
        out["path"], out["start"], out["end"] = row["path"], row["start"], row["end"]
        return out


class EncodeActor:
    """Holds the codec (loaded once per actor) and encodes batches of decoded items: each batch is
    padded with lengths, so every item gets exactly its unbatched codes."""

    def __init__(
        self,
        codec_spec,
        n_q: int,
        device: str,
        chunk_seconds: float,
        max_samples: int,
        bucket_seconds: tuple[float, ...] = (),
        threads: int = 1,
        die_once_flag: str | None = None,
    ) -> None:
        torch.set_num_threads(max(1, threads))
        # an actor given a GPU fraction sees its GPU as cuda (Ray sets CUDA_VISIBLE_DEVICES)
        self.codec = load_tokenize_codec(
            codec_spec,
            "cuda" if device.startswith("cuda") and torch.cuda.is_available() else "cpu",
            bucket_seconds,
        )
        self.n_q, self.chunk_seconds, self.die_once_flag = n_q, chunk_seconds, die_once_flag
        self.max_samples = max_samples

    def _die_once_for_tests(self) -> None:
        flag = self.die_once_flag
        if flag and not Path(flag).exists():
            Path(flag).write_text(str(os.getpid()))
            os._exit(1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        self._die_once_for_tests()
        count = len(batch["index"])
        codes: list[np.ndarray] = [np.zeros((self.n_q, 0), dtype=np.int32)] * count
        errors = [str(e) for e in batch["error"]]
        seconds = [0.0] * count
        sha = [str(s) for s in batch["sha256"]]
        rates = [int(r) for r in batch["sample_rate"]]
        ready = [i for i in range(count) if not errors[i] and not batch["long"][i]]
        for i in [i for i in range(count) if not errors[i] and batch["long"][i]]:
            codes[i], seconds[i], sha[i], rates[i], errors[i] = self._encode_long(batch, i)
        lengths = [batch["audio"][i].shape[-1] for i in ready]
        for group in ([ready[k] for k in bucket] for bucket in length_buckets(lengths, self.max_samples)):
            try:
                encoded: list = self._encode([batch["audio"][i] for i in group])
            except Exception:  # noqa: BLE001 (one by one, so one bad item fails alone)
                encoded = []
                for i in group:
                    try:
                        encoded += self._encode([batch["audio"][i]])
                    except Exception as item_err:  # noqa: BLE001
                        encoded.append(f"encoding failed: {type(item_err).__name__}: {item_err}")
            for i, result in zip(group, encoded):
                if isinstance(result, str):
                    errors[i] = result
                else:
                    codes[i] = result
                    seconds[i] = batch["audio"][i].shape[-1] / self.codec.sample_rate
        return {
            "index": batch["index"],
            "codes": np.array(codes + [None], dtype=object)[:-1],  # ragged: one [n_q, F] per row
            "error": np.array(errors, dtype=object),
            "seconds": np.array(seconds),
            "sha256": np.array(sha, dtype=object),
            "sample_rate": np.array(rates),
        }

    def _encode(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            return TokenizeJob._encode_batch([{"audio": a} for a in audios], self.codec, self.n_q)

    def _encode_long(self, batch, i: int):
        """A file over the long-file limit: streamed from disk and encoded in chunks, here in the actor
        (`tokenize.encode_long`, as the local engine does) -> (codes, seconds, sha256, rate, error)."""
        from codeclab.audio.io import AudioError

        start, end = (None if math.isnan(batch[k][i]) else float(batch[k][i]) for k in ("start", "end"))
        empty = np.zeros((self.n_q, 0), dtype=np.int32)
        try:
            codes, seconds, sha, rate = encode_long(
                str(batch["path"][i]), start, end, self.codec, self.n_q, self.chunk_seconds
            )
            return codes, seconds, sha, rate, ""
        except AudioError as err:
            return empty, 0.0, "", 0, err.reason
        except Exception as err:  # noqa: BLE001
            return empty, 0.0, "", 0, f"encoding failed: {type(err).__name__}: {err}"


def start_ray(address: str | None, log=None):
    """Connect to `address` ("auto", "ray://HOST:PORT") or start a local cluster bound to 127.0.0.1."""
    ray = optional_import("ray", "ray", "the Ray engine")
    if ray.is_initialized():
        return ray
    if address in (None, "", "local"):
        ray.init(
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


class RayTokenizeJob(TokenizeJob):
    """`TokenizeJob` whose items are decoded and encoded by a Ray Data pipeline (see the module doc); the
    planning, the store writer, resume and merge are the local job's own."""

    def __init__(self, options: TokenizeOptions, ray_options: RayOptions, on_progress=None) -> None:
        super().__init__(options, on_progress)
        if options.shard not in (None, (0, 1)):
            raise ValueError("--engine ray plans the whole corpus on its driver; drop --shard")
        options.shard = (0, 1)  # the driver is the one shard: it writes and merges
        self.ray_options = ray_options

    def _device(self) -> str:
        return "cpu"  # the driver loads the codec only for the store's metadata; the actors encode

    def _process(self, todo, codec, n_q, writer, report, max_samples) -> None:
        start_ray(self.ray_options.address)
        data = optional_import("ray.data", "ray", "the Ray engine")
        context = data.DataContext.get_current()
        context.max_errored_blocks = (
            -1
        )  # a block that fails after Ray's retries is left out; we rerun its items
        context.enable_progress_bars = False
        remaining = set(range(len(todo)))
        for attempt, batch_items in ((1, self.ray_options.batch_items), (2, 1)):
            if not remaining:
                break
            rows = [_item_row(i, todo[i]) for i in sorted(remaining)]
            dataset = data.from_items(rows)
            decoded = dataset.map(DecodeTask(codec.sample_rate, codec.channels, self.options.long_seconds))
            encoded = decoded.map_batches(
                EncodeActor,
                fn_constructor_kwargs={
                    "codec_spec": self.options.codec,
                    "n_q": n_q,
                    "device": "cuda" if self.ray_options.gpus_per_actor > 0 else "cpu",  # not --device
                    "chunk_seconds": self.options.chunk_seconds,
                    "bucket_seconds": self.options.bucket_seconds,
                    "max_samples": max_samples,
                    "threads": self.ray_options.threads_per_actor
                    or max(1, round(self.ray_options.cpus_per_actor)),
                    "die_once_flag": self.ray_options.die_once_flag,
                },
                concurrency=self.ray_options.actors,
                batch_size=batch_items,
                num_gpus=self.ray_options.gpus_per_actor,
                num_cpus=self.ray_options.cpus_per_actor,
                max_restarts=-1,
                max_task_retries=2,
            )
            for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
                for k, index in enumerate(batch["index"]):
                    self._write(todo[int(index)], batch, k, writer, report)
                    remaining.discard(int(index))
                self._maybe_flush(writer, report)
                report.wall_seconds = time.perf_counter() - self._begin
                self.on_progress(report, self._total)
            if remaining and attempt == 1:
                self._log(
                    f"{len(remaining)} item(s) lost with a failed Ray block; running them again one by one"
                )
        for index in sorted(remaining):
            item = todo[index]
            writer.add_error(item.id, item.location, LOST_REASON, item.start, item.end)
            report.failed += 1
        report.wall_seconds = time.perf_counter() - self._begin
        self.on_progress(report, self._total)

    def _write(
        self,
        item: AudioItem,
        batch: dict[str, np.ndarray],
        k: int,
        writer: ShardWriter,
        report: TokenizeReport,
    ) -> None:
        error = str(batch["error"][k])
        if error:
            writer.add_error(item.id, item.location, error, item.start, item.end)
            report.failed += 1
            return
        seconds = float(batch["seconds"][k])
        codes = np.asarray(batch["codes"][k])
        writer.add(self._record(item, codes, seconds, str(batch["sha256"][k]), int(batch["sample_rate"][k])))
        report.tokenized += 1
        report.audio_seconds += seconds

    @staticmethod
    def _log(message: str) -> None:
        import logging

        logging.getLogger("codeclab.tokenize").warning(message)


def tokenize_with_ray(
    options: TokenizeOptions, ray_options: RayOptions | None = None, on_progress=None
) -> TokenizeReport:
    """Tokenize `options.inputs` into `options.out` on Ray (see the module doc)."""
    return RayTokenizeJob(options, ray_options or RayOptions(), on_progress).run()
