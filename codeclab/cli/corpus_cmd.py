"""`codeclab corpus demo`: build the offline demo corpus (speech, voices, music, sounds) with licences."""

from __future__ import annotations

from pathlib import Path

import typer

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
    seed: int = typer.Option(0),
) -> None:
    """Build an offline demo corpus; `make corpus` installs what it needs."""
    from codeclab.data.demo_corpus import build_demo_corpus

    setup_logging()
    summary = build_demo_corpus(
        out, espeak, flite, festival, klettres, asterisk, music, samples, val_percent, seed
    )
    for source, reason in summary["skipped"].items():
        console.print(f"[yellow]skipped {source}:[/] {reason}")
    if not summary["items"]:
        fail("no source could be built; run `make corpus` to install the Debian packages and music21")
    parts = ", ".join(f"{k} {v}" for k, v in summary["by_source"].items())
    console.print(
        f"{out / 'manifest.jsonl'}: {summary['items']} files, {summary['seconds'] / 60:.1f} min ({parts}); "
        f"{summary['validation']} in the validation split"
    )
