"""`codeclab corpus demo`: build the offline demo corpus (speech, voices, music, sounds) with licences."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from codeclab.cli.common import console, fail, setup_logging

corpus_app = typer.Typer(help="Build corpora.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(corpus_app, name="corpus")


@corpus_app.command("demo")
def demo_corpus_command(
    out: Path = typer.Option(..., "--out", help="Output directory (audio/ and manifest.jsonl)."),
    espeak: int = typer.Option(
        200, help="Utterances synthesised with espeak-ng (12 languages, many voices)."
    ),
    flite: int = typer.Option(40, help="Utterances from flite's voices."),
    festival: int = typer.Option(20, help="Utterances from festival."),
    klettres: int = typer.Option(150, help="Real-voice letters and syllables (klettres-data)."),
    asterisk: int = typer.Option(80, help="Real-voice telephone prompts (asterisk-core-sounds-en-wav)."),
    music: int = typer.Option(8, help="Bach pieces from music21's corpus rendered with fluidsynth."),
    samples: int = typer.Option(60, help="Sounds from sonic-pi-samples."),
    val_percent: int = typer.Option(10, help="Percent of items in the fixed validation split."),
    seed: int = typer.Option(0, help="Seed of the voice, rate and text choices."),
) -> None:
    """Build an offline demo corpus; `make corpus` installs what it needs."""
    from codeclab.corpora.demo import build_demo_corpus

    setup_logging()
    summary = build_demo_corpus(
        out, espeak, flite, festival, klettres, asterisk, music, samples, val_percent, seed
    )
    for source, reason in summary["skipped"].items():
        console.print(f"[yellow]skipped {escape(str(source))}:[/] {escape(str(reason))}", markup=True)
    if not summary["items"]:
        fail("no source could be built; run `make corpus` to install the Debian packages and music21")
    parts = ", ".join(f"{k} {v}" for k, v in summary["by_source"].items())
    console.print(
        f"{out / 'manifest.jsonl'}: {summary['items']} files, {summary['seconds'] / 60:.1f} min ({parts}); "
        f"{summary['validation']} in the validation split"
    )


@corpus_app.command("speech")
def speech_corpus_command(
    out: Path = typer.Option(..., "--out", help="Output directory (audio/, train.jsonl, heldout.jsonl)."),
    sources: list[str] = typer.Option(
        None, "--source", help="asterisk-g722, ktuberling, klettres (repeatable; default: all)."
    ),
    limit_per_speaker: int = typer.Option(None, help="At most this many files per speaker."),
    val_percent: int = typer.Option(3, help="Percent of training speakers' files in the validation split."),
    workers: int = typer.Option(2, help="ffmpeg processes at once."),
) -> None:
    """Real human speech from Debian packages, with held-out speakers; `make speech-corpus` installs them."""
    from codeclab.corpora.speech import build_speech_corpus

    setup_logging()
    try:
        summary = build_speech_corpus(out, sources, limit_per_speaker, val_percent, workers)
    except (RuntimeError, ValueError) as err:
        fail(err)
    for source, reason in summary["skipped"].items():
        console.print(f"[yellow]skipped {escape(str(source))}:[/] {escape(str(reason))}", markup=True)
    for path, reason in summary["failed"].items():
        console.print(f"[red]could not decode {escape(str(path))}:[/] {escape(str(reason))}", markup=True)
    for path in summary["too_short"]:
        console.print(f"[yellow]left out {escape(str(path))}:[/] under 100 ms once decoded", markup=True)
    if not summary["train_items"]:
        fail("no speech found; run `make speech-corpus` to install the Debian packages")
    console.print(
        f"{out / 'train.jsonl'}: {summary['train_items']} files, {summary['train_seconds'] / 60:.1f} min, "
        f"{summary['train_speakers']} speakers; {out / 'heldout.jsonl'}: {summary['heldout_items']} files, "
        f"{summary['heldout_seconds'] / 60:.1f} min ({', '.join(summary['heldout_speakers'])})"
    )
