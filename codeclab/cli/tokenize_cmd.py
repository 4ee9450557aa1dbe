"""`codeclab tokenize` and `codeclab detokenize`: corpora to token stores and back."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.markup import escape

from codeclab.cli.common import (
    codec_from_options,
    console,
    device_or_fail,
    fail,
    numbers_or_fail,
    setup_logging,
)
from codeclab.tokens.store_paths import StoreLayout

DEFAULT_CODEC = "codeclab-16k-speech"


def register(app: typer.Typer) -> None:
    app.command("tokenize")(tokenize_command)
    app.command("detokenize")(detokenize_command)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"--shard takes I/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise typer.BadParameter(f"--shard {text}: need 0 <= I < N")
    return index, count


INPUTS_ARGUMENT = typer.Argument(
    None,
    help="Directories, globs, manifests (.jsonl/.csv/.tsv, gzipped or not), lhotse manifests or Shar "
    "directories, WebDataset tar shards (brace patterns too), Hugging Face datasets (save_to_disk or "
    ".parquet), or audio files.",
)
OUT_OPTION = typer.Option(..., "--out", help="Token store directory.")
CODEC_OPTION = typer.Option(
    DEFAULT_CODEC,
    "--codec",
    help="NAME[@WEIGHTS][:N][,key=value] or a saved directory (docs/codecs.md#naming-a-codec).",
)
WEIGHTS_OPTION = typer.Option(None, "--weights", help="Pretrained weights for a registry codec.")
RANDOM_INIT_OPTION = typer.Option(False, "--random-init", help="Use an untrained (random, seeded) codec.")
SEED_OPTION = typer.Option(0, "--seed", help="Seed of --random-init.")
N_Q_OPTION = typer.Option(None, "--n-q", help="Codebooks to keep (default: all).")
DEVICE_OPTION = typer.Option("cpu", "--device", help="cpu or cuda (under torchrun: cuda:LOCAL_RANK).")
BATCH_SECONDS_OPTION = typer.Option(
    None, "--batch-seconds", help="Padded audio per batch (default 60 on CPU, 1200 on CUDA)."
)
WORKERS_OPTION = typer.Option(1, "--workers", help="Decoding processes (0 decodes in the main process).")
SHARD_OPTION = typer.Option(
    None, "--shard", help="I/N: tokenize shard I of N (default from torchrun's RANK/WORLD_SIZE)."
)
RESUME_OPTION = typer.Option(False, "--resume", help="Continue an interrupted run, skipping finished items.")
RETRY_ERRORS_OPTION = typer.Option(False, "--retry-errors", help="With --resume, try failed files again.")
MERGE_ONLY_OPTION = typer.Option(False, "--merge", help="Only merge the shards of --out into one index.")
LONG_SECONDS_OPTION = typer.Option(
    600.0, "--long-seconds", help="Stream files longer than this (bounded memory)."
)
CHUNK_SECONDS_OPTION = typer.Option(120.0, "--chunk-seconds", help="Chunk size for streamed files.")
BUCKET_SECONDS_OPTION = typer.Option(
    None,
    "--bucket-seconds",
    help="Peers: pad every item to the shortest of these lengths, e.g. 1,2,4 (few shapes for a torch.compile'd model; docs/peers.md).",
)
FLUSH_ITEMS_OPTION = typer.Option(2000, "--flush-items", help="Rows per Parquet part file.")
WORKER_TIMEOUT_OPTION = typer.Option(
    900.0, "--worker-timeout", help="Seconds without a decoded item before the workers count as hung."
)
ENGINE_OPTION = typer.Option("local", "--engine", help="local (this process and its workers) or ray.")
ADDRESS_OPTION = typer.Option(
    None, "--address", help="With --engine ray: auto, ray://HOST:PORT, or none to start a local cluster."
)
ACTORS_OPTION = typer.Option(1, "--actors", help="With --engine ray: encoder actors (each loads the codec).")
GPUS_PER_ACTOR_OPTION = typer.Option(
    0.0, "--gpus-per-actor", help="With --engine ray: a fraction of a GPU per actor (0: CPU)."
)


def tokenize_command(
    inputs: list[str] = INPUTS_ARGUMENT,
    out: Path = OUT_OPTION,
    codec: str = CODEC_OPTION,
    weights: str = WEIGHTS_OPTION,
    random_init: bool = RANDOM_INIT_OPTION,
    seed: int = SEED_OPTION,
    n_q: int | None = N_Q_OPTION,
    device: str = DEVICE_OPTION,
    batch_seconds: float = BATCH_SECONDS_OPTION,
    workers: int = WORKERS_OPTION,
    shard: str = SHARD_OPTION,
    resume: bool = RESUME_OPTION,
    retry_errors: bool = RETRY_ERRORS_OPTION,
    merge_only: bool = MERGE_ONLY_OPTION,
    long_seconds: float = LONG_SECONDS_OPTION,
    chunk_seconds: float = CHUNK_SECONDS_OPTION,
    bucket_seconds: str | None = BUCKET_SECONDS_OPTION,
    flush_items: int = FLUSH_ITEMS_OPTION,
    worker_timeout: float = WORKER_TIMEOUT_OPTION,
    engine: str = ENGINE_OPTION,
    address: str = ADDRESS_OPTION,
    actors: int = ACTORS_OPTION,
    gpus_per_actor: float = GPUS_PER_ACTOR_OPTION,
) -> None:
    """Tokenize audio files into a token store (Parquet shards + tokens.json + errors.jsonl)."""
    from codeclab.corpora.manifest import ManifestError
    from codeclab.pipelines.tokenize import TokenizeOptions, WorkerError
    from codeclab.tokens.store import StoreError

    setup_logging()
    device = device_or_fail(device)
    if merge_only:
        _merge_only(out)
    if not inputs:
        fail("give at least one input (directory, glob, manifest or file), or --merge")
    spec, n_q = codec_from_options(codec, weights, random_init, seed, n_q)
    try:
        options = TokenizeOptions(
            inputs=list(inputs),
            out=out,
            codec=spec,
            n_q=n_q,
            device=device,
            batch_seconds=batch_seconds,
            workers=workers,
            shard=parse_shard(shard),
            resume=resume,
            retry_errors=retry_errors,
            long_seconds=long_seconds,
            chunk_seconds=chunk_seconds,
            bucket_seconds=tuple(numbers_or_fail(bucket_seconds, "--bucket-seconds", "seconds")),
            flush_items=flush_items,
            worker_timeout=worker_timeout,
        )
    except ValueError as err:
        fail(err)
    run = _engine(engine, address, actors, gpus_per_actor)
    try:
        report = _run_with_progress(options, run)
    except (ManifestError, StoreError, ValueError, FileNotFoundError, WorkerError, ImportError) as err:
        fail(err)
    _print_report(report)
    raise typer.Exit(1 if report.failed or report.failed_before else 0)


def _merge_only(out: Path) -> None:
    """--merge: merge a store whose shards are all finished; exits 1 when it lists errors."""
    from codeclab.tokens.store import StoreError, merge, shard_status

    try:
        num_shards, done = shard_status(out)
        if num_shards == 0 or len(done) < num_shards:
            missing = sorted(set(range(num_shards)) - done)
            fail(
                f"{out}: {len(done)} of {num_shards or '?'} shards are finished"
                + (f" (missing: {', '.join(map(str, missing))})" if missing else "")
                + "; run the missing shards (with --resume) before merging"
            )
        counts = merge(out)
    except StoreError as err:
        fail(err)
    console.print(f"merged {out}: {counts['items']} items, {counts['errors']} errors")
    raise typer.Exit(1 if counts["errors"] else 0)


def _engine(engine: str, address: str | None, actors: int, gpus_per_actor: float):
    """The function that runs the job: the local engine, or Ray with its actors."""
    from codeclab.pipelines.tokenize import tokenize_corpus

    if engine not in ("local", "ray"):
        fail(f"--engine is local or ray, got {engine!r}")
    if engine == "local":
        return tokenize_corpus
    if actors < 1 or gpus_per_actor < 0:
        fail("--actors must be at least 1 and --gpus-per-actor at least 0")
    from codeclab.pipelines.ray_engine import RayOptions, tokenize_with_ray

    ray_options = RayOptions(address=address, actors=actors, gpus_per_actor=gpus_per_actor)

    def run_on_ray(opts, update):
        return tokenize_with_ray(opts, ray_options, update)

    return run_on_ray


PROGRESS_SECONDS = 30.0  # a non-interactive run logs a progress line at least this often


def _run_with_progress(options, run):
    if not console.is_terminal:  # batch jobs, Slurm, CI: log lines, not a bar
        return _run_with_log_lines(options, run)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("[bold]tokenize"),
        BarColumn(),
        MofNCompleteColumn(),  # "0/?" until the inputs are listed, then "done/total"
        TextColumn("files"),
        TextColumn("{task.fields[hours]:.2f} h audio"),
        TextColumn("{task.fields[xrt]:.1f}x real time"),  # audio / wall time of the whole job, as the summary
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("tokenize", total=None, hours=0.0, xrt=0.0)

        def update(report, total: int) -> None:
            done = report.skipped + report.tokenized + report.failed
            progress.update(
                task,
                total=total,
                completed=done,
                hours=report.audio_seconds / 3600,
                xrt=report.realtime_factor,
            )

        return run(options, update)


def _run_with_log_lines(options, run):
    import sys

    from codeclab.pipelines.progress_log import ProgressLog

    def emit(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with ProgressLog(emit, PROGRESS_SECONDS) as progress:

        def update(report, total: int) -> None:
            done = report.skipped + report.tokenized + report.failed
            progress.update(done, total, report.audio_seconds, report.failed + report.failed_before)

        return run(options, update)


def _print_report(report) -> None:
    shard, count = report.shard
    where = f" (shard {shard}/{count})" if count > 1 else ""
    console.print(
        f"{report.store}{where}: {report.tokenized} tokenized, {report.failed} failed, {report.skipped} already done "
        f"of {report.items}; {report.audio_seconds / 3600:.3f} h of audio at {report.realtime_factor:.1f}x real time"
    )
    if report.tokenized and any(report.profile.values()):  # the Ray engine's time is in Ray's own logs
        prof = ", ".join(f"{k} {v:.1f} s" for k, v in report.profile.items())
        console.print(
            f"time: {prof} (read/decode/resample run in worker processes, overlapped with the model)"
        )
    if report.failed or report.failed_before:
        console.print(
            f"[yellow]{report.failed + report.failed_before} file(s) failed: see {escape(str(StoreLayout(report.store).errors))}[/]",
            markup=True,
        )
    if not report.merged:
        console.print(
            "waiting for the other shards; the last one to finish merges (or run: codeclab tokenize --merge --out STORE)"
        )


def detokenize_command(
    store: Path = typer.Argument(..., help="Token store directory."),
    out: Path = typer.Option(..., "--out", help="Directory for the decoded .wav files."),
    ids: list[str] = typer.Option(None, "--ids", help="Ids to decode (repeatable); default all."),
    codec: str = typer.Option(
        None, "--codec", help="Override the codec recorded in the store (NAME[@WEIGHTS] or a directory)."
    ),
    weights: str = typer.Option(None, "--weights", help="Weights for --codec."),
    random_init: bool = typer.Option(False, "--random-init", help="With --codec: an untrained codec."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
) -> None:
    """Decode items of a token store back to audio files (OUT/<id>.wav)."""
    from codeclab.pipelines.detokenize import detokenize
    from codeclab.tokens.store import StoreError

    setup_logging()
    device = device_or_fail(device)
    override = codec_from_options(codec, weights, random_init)[0] if codec else None
    try:
        written = detokenize(store, out, ids or None, override, device)
    except KeyError as err:  # a missing id: its message, not the KeyError's quoted repr
        fail(err.args[0] if err.args else err)
    except (StoreError, ValueError) as err:
        fail(err)
    console.print(f"wrote {len(written)} file(s) to {out}")
    logging.getLogger("codeclab").debug("detokenized %s", written)
