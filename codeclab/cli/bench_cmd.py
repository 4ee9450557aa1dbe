"""`codeclab bench recon | lm | probe | speed`: compare codecs; every report records how to reproduce it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from codeclab.cli.common import console, device_or_fail, fail, setup_logging

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
        help="NAME[:key=value,...] (repeatable): weights=DIR, random_init=true, n_q=2+4+8, bitrate=6000, mode=1200.",
    ),
    data: list[str] = typer.Option(
        ..., "--data", help="Directory, glob or manifest (repeatable); manifests give text for WER."
    ),
    out: Path = typer.Option(..., "--out"),
    n_q: list[int] = typer.Option(
        None, "--n-q", help="n_q values for every token codec (default: 1, 2, 4, ... , all)."
    ),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all available)."),
    eval_rate: int = typer.Option(16000, "--eval-rate", help="Rate at which items are compared."),
    max_items: int = typer.Option(None, "--max-items"),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Use at most this much of each item."),
    random_init: bool = typer.Option(
        False, "--random-init", help="Token codecs without weights= get random weights (reported)."
    ),
) -> None:
    """Quality versus bitrate: PESQ, STOI, SI-SDR, mel/STFT distance, speaker similarity, DNSMOS, F0, WER."""
    from codeclab.eval.recon import run_recon

    setup_logging()
    specs = list(codecs)
    if n_q:
        extra = "n_q=" + "+".join(str(q) for q in n_q)
        specs = [
            s
            if "n_q=" in s or s.split(":")[0] in ("opus", "codec2")
            else s + ("," if ":" in s else ":") + extra
            for s in specs
        ]
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
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        fail(str(err))
    console.print(f"{out}: results.json, results.csv, results.md, plots/ ({len(report['plots'])} plots)")


@bench_app.command("lm")
def lm_command(
    stores: list[str] = typer.Option(..., "--store", help="Token store (repeatable)."),
    out: Path = typer.Option(..., "--out"),
    patterns: str = typer.Option("flatten,delay", "--patterns"),
    steps: int = typer.Option(400, "--steps"),
    dim: int = typer.Option(128, "--dim"),
    layers: int = typer.Option(2, "--layers"),
    context_frames: int = typer.Option(64, "--context-frames"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train the same small transformer on each store; held-out bits per token and per second of audio."""
    from codeclab.eval.lm_bench import LMBenchConfig, run_lm_bench

    cfg = LMBenchConfig(dim=dim, layers=layers, context_frames=context_frames, steps=steps, seed=seed)
    try:
        run_lm_bench(stores, out, tuple(patterns.split(",")), cfg, _command(), log=console.print)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    console.print(f"{out}: lm.json, lm.csv, lm.md")


@bench_app.command("probe")
def probe_command(
    stores: list[str] = typer.Option(
        ..., "--store", help="Token store of a phone-aligned corpus (repeatable)."
    ),
    manifest: Path = typer.Option(
        ..., "--manifest", help="The corpus manifest (the demo corpus links espeak phone alignments)."
    ),
    out: Path = typer.Option(..., "--out"),
    steps: int = typer.Option(300, "--steps", help="Training steps of the all-codebooks probe."),
) -> None:
    """Linear phone probe per codebook: how semantic are the tokens?"""
    from codeclab.eval.probe import run_probe

    try:
        run_probe(stores, manifest, out, steps, _command(), log=console.print)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    console.print(f"{out}: probe.json, probe.csv, probe.md")


@bench_app.command("speed")
def speed_command(
    codecs: list[str] = typer.Option(..., "--codec", help="NAME[:key=value,...] (repeatable)."),
    out: Path = typer.Option(None, "--out"),
    device: str = typer.Option("cpu", "--device"),
    seconds: float = typer.Option(10.0, "--seconds"),
    batch: int = typer.Option(4, "--batch"),
    reps: int = typer.Option(3, "--reps"),
    random_init: bool = typer.Option(False, "--random-init"),
) -> None:
    """Encode/decode x real time, frames/s and peak memory on one device."""
    from codeclab.codecs.base import RoundTripCodec
    from codeclab.eval.recon import CodecChoice
    from codeclab.eval.report import codec_fingerprint, provenance, write_json, write_table
    from codeclab.eval.speed import measure_speed

    device = device_or_fail(device)
    rows, fingerprints = [], {}
    for spec in codecs:
        choice = CodecChoice.parse(spec, random_init)
        choice.options["device"] = device
        try:
            codec = choice.load()
        except (ValueError, ImportError) as err:
            fail(str(err))
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
        report = {"provenance": provenance(_command(), codecs=fingerprints), "results": rows}
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
