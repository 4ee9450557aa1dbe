"""`codeclab bench recon | lm | probe | speed`: compare codecs; every report records how to reproduce it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from codeclab.cli.common import console, device_or_fail, fail, numbers_or_fail, setup_logging

bench_app = typer.Typer(
    help="Benchmarks: reconstruction, token LM, phone probe, speed.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


def _command() -> list[str]:
    return ["codeclab", *sys.argv[1:]] if sys.argv and sys.argv[0].endswith("codeclab") else list(sys.argv)


@bench_app.command("recon")
def recon_command(
    codecs: list[str] = typer.Option(
        ...,
        "--codec",
        help="NAME[@WEIGHTS][:N+M][,key=value] (repeatable): random_init=true, seed=S, bitrate=6000, mode=1200 (docs/codecs.md#naming-a-codec).",
    ),
    data: list[str] = typer.Option(
        ..., "--data", help="Directory, glob or manifest (repeatable); manifests give text for WER."
    ),
    out: Path = typer.Option(..., "--out", help="Report directory (JSON, CSV, Markdown, plots)."),
    n_q: list[int] = typer.Option(
        None, "--n-q", help="n_q values for every token codec (default: 1, 2, 4, ... , all)."
    ),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all available)."),
    eval_rate: int = typer.Option(16000, "--eval-rate", help="Rate at which items are compared."),
    max_items: int = typer.Option(None, "--max-items", help="Use at most this many items (default: all)."),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Use at most this much of each item."),
    random_init: bool = typer.Option(
        False, "--random-init", help="Token codecs without weights= get random weights (reported)."
    ),
    html: bool = typer.Option(
        False, "--html", help="Also write report.html: the table, plots and audio players (one file)."
    ),
    listen_items: int = typer.Option(3, "--listen-items", help="Items with audio players in report.html."),
    listen: str = typer.Option(
        "first", "--listen", help="Which items report.html plays: first, worst, random, or ID[,ID...]."
    ),
    align_ms: float = typer.Option(
        0.0, "--align-delay-ms", help="Align each output to its reference within this many ms before scoring."
    ),
    plot_rate: str = typer.Option(
        "coded", "--plot-rate", help="x axis of the plots: coded (payload kbps as written) or nominal."
    ),
) -> None:
    """Quality versus bitrate: PESQ, STOI, SI-SDR, mel/STFT distance, speaker similarity, DNSMOS, F0, WER."""
    from codeclab.eval.recon import run_recon

    setup_logging()
    specs = list(codecs)
    if n_q:
        extra = "n_q=" + "+".join(str(q) for q in n_q)
        specs = [_with_default_n_q(s, extra) for s in specs]
    try:
        report = run_recon(
            specs,
            data,
            out,
            metrics.split(",") if metrics else None,
            eval_rate,
            max_items,
            max_seconds,
            random_init,
            _command(),
            log=console.print,
            html=html,
            listen_items=listen_items,
            align_ms=align_ms,
            plot_rate=plot_rate,
            listen=listen,
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        fail(err)
    page = ", report.html" if html else ""
    console.print(
        f"{out}: results.json, results.csv, results.md, items.jsonl{page}, plots/ ({len(report['plots'])} plots)"
    )


@bench_app.command("loss")
def loss_command(
    codecs: list[str] = typer.Option(
        ...,
        "--codec",
        help="A token codec (NAME[@WEIGHTS][:N][,key=value]) or opus[:bitrate=6000] (repeatable).",
    ),
    data: list[str] = typer.Option(..., "--data", help="Directory, glob or manifest (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Report directory (JSON, CSV, Markdown, plots)."),
    loss: str = typer.Option("0.01,0.05,0.1,0.2", "--loss", help="Packet loss rates, comma-separated."),
    ber: str = typer.Option("1e-5,1e-4,1e-3,1e-2", "--ber", help="Bit error rates, comma-separated."),
    metrics: str = typer.Option("stoi,mel_distance", "--metrics", help="Comma-separated metrics."),
    max_items: int = typer.Option(None, "--max-items", help="Use at most this many items (default: all)."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the losses and bit flips (the same for every codec)."
    ),
) -> None:
    """Quality under packet loss and bit errors: .clab packets with concealment beside Opus's own."""
    from codeclab.eval.robustness import run_robustness

    setup_logging()
    try:
        run_robustness(
            list(codecs),
            data,
            out,
            numbers_or_fail(loss, "--loss"),
            numbers_or_fail(ber, "--ber"),
            metrics.split(","),
            max_items=max_items,
            seed=seed,
            command=_command(),
            log=console.print,
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        fail(err)
    console.print(f"{out}: results.md, results.json, plots/")


@bench_app.command("suite")
def suite_command(
    codecs: list[str] = typer.Option(
        ..., "--codec", help="Codec to compare (repeatable; the --codec grammar of bench recon)."
    ),
    data: list[str] = typer.Option(
        ..., "--data", help="The speech set: directory, glob or manifest (repeatable)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Directory for every sub-report and the leaderboard (index.html)."
    ),
    teacher: Path = typer.Option(
        None, "--teacher", help="Phone teacher directory: labels for the probe on real speech."
    ),
    metrics: str = typer.Option(
        "stoi,pesq_wb,mel_distance,si_sdr", "--metrics", help="Comma-separated recon metrics."
    ),
    max_items: int = typer.Option(None, "--max-items", help="Use at most this many items (default: all)."),
    lm_steps: int = typer.Option(400, "--lm-steps", help="Training steps of the token LM on each store."),
    random_init: bool = typer.Option(
        False, "--random-init", help="Token codecs without weights get random weights (reported)."
    ),
) -> None:
    """Recon, token LM, phone probe and speed for every codec on one speech set, and one leaderboard page."""
    from codeclab.eval.suite import run_suite

    setup_logging()
    try:
        run_suite(
            codecs,
            data,
            out,
            teacher,
            metrics.split(","),
            max_items,
            lm_steps,
            random_init,
            _command(),
            log=console.print,
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        fail(err)
    parts = [p for p in ("recon/", "lm/", "probe/", "speed.json") if (out / p.rstrip("/")).exists()]
    console.print(f"{out}: index.html (leaderboard), leaderboard.md, {', '.join(parts)}")


@bench_app.command("lm")
def lm_command(
    stores: list[str] = typer.Option(..., "--store", help="Token store (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Report directory (JSON, CSV, Markdown, plots)."),
    patterns: str = typer.Option(
        "flatten,delay", "--patterns", help="Comma-separated codebook patterns to compare."
    ),
    steps: int = typer.Option(400, "--steps", help="Training steps of the LM on each store."),
    dim: int = typer.Option(128, "--dim", help="Width of the LM."),
    layers: int = typer.Option(2, "--layers", help="Transformer layers of the LM."),
    context_frames: int = typer.Option(64, "--context-frames", help="Frames of context per LM sequence."),
    seed: int = typer.Option(0, "--seed", help="Seed of the LM's initialisation and batches."),
    n_qs: str = typer.Option(
        None, "--n-q", help="Comma-separated codebook counts to score each store at (default: all it has)."
    ),
    bpes: list[Path] = typer.Option(
        None,
        "--bpe",
        help="An acoustic BPE (`codeclab export bpe` directory; repeatable), scored on its store.",
    ),
) -> None:
    """Train the same small transformer on each store; held-out bits per token and per second of audio."""
    from codeclab.eval.lm_bench import LMBenchConfig, run_lm_bench

    cfg = LMBenchConfig(dim=dim, layers=layers, context_frames=context_frames, steps=steps, seed=seed)
    counts = [int(v) for v in numbers_or_fail(n_qs, "--n-q")] if n_qs else None
    try:
        run_lm_bench(
            stores,
            out,
            tuple(patterns.split(",")),
            cfg,
            _command(),
            log=console.print,
            n_qs=counts,
            bpes=[str(b) for b in bpes or []],
        )
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    console.print(f"{out}: lm.json, lm.csv, lm.md")


@bench_app.command("probe")
def probe_command(
    stores: list[str] = typer.Option(
        ..., "--store", help="Token store of a phone-aligned corpus (repeatable)."
    ),
    manifest: Path = typer.Option(
        None, "--manifest", help="The corpus manifest with phone alignments (the demo corpus's espeak items)."
    ),
    labels: str = typer.Option(
        None,
        "--labels",
        help="Or: teacher:DIR, label real speech by a phone teacher's most probable phone per frame.",
    ),
    out: Path = typer.Option(..., "--out", help="Report directory (JSON, CSV, Markdown, plots)."),
    steps: int = typer.Option(300, "--steps", help="Training steps of the all-codebooks probe."),
) -> None:
    """Linear phone probe per codebook: how semantic are the tokens?"""
    from codeclab.eval.probe import run_probe

    if (manifest is None) == (labels is None):
        fail("give --manifest (phone-aligned corpus) or --labels teacher:DIR, one of them")
    try:
        run_probe(stores, manifest, out, steps, _command(), log=console.print, labels=labels)
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    console.print(f"{out}: probe.json, probe.csv, probe.md")


@bench_app.command("speed")
def speed_command(
    codecs: list[str] = typer.Option(
        ..., "--codec", help="NAME[@WEIGHTS][:N][,key=value] (repeatable; docs/codecs.md#naming-a-codec)."
    ),
    out: Path = typer.Option(None, "--out", help="Report directory (default: print only)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    seconds: float = typer.Option(10.0, "--seconds", help="Seconds of audio per item (--stream: at most 4)."),
    batch: int = typer.Option(4, "--batch", help="Items per encode / decode call."),
    reps: int = typer.Option(3, "--reps", help="Timed repetitions after a warm-up (the median is reported)."),
    random_init: bool = typer.Option(
        False, "--random-init", help="Codecs without weights get random ones (speed does not depend on them)."
    ),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Stream in --chunk-ms chunks: per-chunk compute time, real-time factor, concurrent real-time streams.",
    ),
    chunk_ms: float = typer.Option(80.0, "--chunk-ms", help="Chunk size of --stream, in milliseconds."),
) -> None:
    """Encode/decode x real time, frames/s and peak memory on one device (or, with --stream, streaming
    speed)."""
    from codeclab.codecs.roundtrip import RoundTripCodec
    from codeclab.eval.report import codec_fingerprint, provenance, write_json, write_table
    from codeclab.eval.speed import measure_speed

    device = device_or_fail(device)
    if stream:
        _stream_speed(codecs, out, device, seconds, chunk_ms, random_init)
        return
    rows, fingerprints = [], {}
    for spec in codecs:
        codec = _speed_codec(spec, random_init, device)
        if isinstance(codec, RoundTripCodec):
            fail(f"{spec}: speed covers token codecs (classic codecs have no encode/decode)")
        result = measure_speed(codec, seconds, batch, reps, device)
        fingerprints[spec] = codec_fingerprint(codec)
        rows.append({"codec": spec, **result.to_dict()})
        console.print(
            f"{spec}: encode {result.encode_xrt:.1f}x, decode {result.decode_xrt:.1f}x real time on {result.device}"
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {"provenance": provenance(_command(), codecs=fingerprints), "results": rows}
        write_json(report, out / "speed.json")
        write_table(
            rows,
            [
                "codec",
                "device",
                "batch",
                "seconds",
                "encode_xrt",
                "decode_xrt",
                "frames_per_second",
                "encode_peak_mib",
                "decode_peak_mib",
                "random_init",
            ],
            out / "speed",
            "Speed",
            [f"provenance: {report['provenance']['command']}; {report['provenance']['machine']}"],
        )


def _stream_speed(
    codecs: list[str], out: Path | None, device: str, seconds: float, chunk_ms: float, random_init: bool
) -> None:
    """`bench speed --stream`: one row per codec, and the batch sizes tried per codec."""
    from codeclab.codecs.modules.state import StreamingUnsupported
    from codeclab.eval.report import codec_fingerprint, provenance, write_json, write_table
    from codeclab.eval.speed import measure_stream_speed

    if not 1.0 <= chunk_ms <= 10_000.0:
        fail(f"--chunk-ms must lie in [1, 10000], got {chunk_ms}")
    rows, by_streams, fingerprints = [], [], {}
    for spec in codecs:
        codec = _speed_codec(spec, random_init, device)
        try:
            result = measure_stream_speed(codec, chunk_ms, min(seconds, 4.0), device)
        except (ValueError, ImportError, StreamingUnsupported) as err:
            fail(f"{spec}: {err}")
        fingerprints[spec] = codec_fingerprint(codec)
        row = {"codec": spec, **result.to_dict()}
        by_streams += [{"codec": spec, **r} for r in row.pop("by_streams")]
        latency = row.pop("latency_ms") or {}
        row["roundtrip_latency_ms"] = latency.get("roundtrip_ms")
        rows.append(row)
        console.print(
            f"{spec}: {result.chunk_ms:g} ms chunks: encode {result.encode_ms:.1f} ms, decode "
            f"{result.decode_ms:.1f} ms per chunk (real-time factor {result.rtf:.2f}); "
            f"{result.max_realtime_streams} streams in real time on {result.device}"
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "provenance": provenance(_command(), codecs=fingerprints),
            "results": rows,
            "by_streams": by_streams,
        }
        write_json(report, out / "stream_speed.json")
        note = [f"provenance: {report['provenance']['command']}; {report['provenance']['machine']}"]
        columns = ["codec", "device", "chunk_ms", "encode_ms", "decode_ms", "p95_ms", "rtf"]
        columns += ["max_realtime_streams", "roundtrip_latency_ms", "random_init"]
        write_table(rows, columns, out / "stream_speed", "Streaming speed", note)
        columns = ["codec", "streams", "encode_ms", "decode_ms", "p95_ms", "realtime"]
        write_table(by_streams, columns, out / "stream_speed_by_streams", "Streaming speed by batch", note)


def _with_default_n_q(text: str, extra: str) -> str:
    """`--n-q` for every token codec whose reference names no n_q of its own."""
    from codeclab.catalog.ref import CodecRef, split_ref

    try:
        ref = CodecRef.parse(text)
    except ValueError as err:
        fail(err)
    if ref.n_q is not None or ref.name in ("opus", "codec2"):
        return text
    return text + ("," if split_ref(text)[2] else ":") + extra


def _speed_codec(spec: str, random_init: bool, device: str):
    """The codec a `bench speed` --codec names, on `device` (exits 2 naming it when it cannot load)."""
    from codeclab.eval.recon import CodecChoice

    try:
        choice = CodecChoice.parse(spec, random_init)
        choice.options["device"] = device
        return choice.load(roundtrip=True)
    except (ValueError, ImportError) as err:
        fail(f"{spec}: {err}")
