"""`codeclab encode` / `codeclab decode`: one audio file to a .clab file and back."""

from __future__ import annotations

from pathlib import Path

import typer

from codeclab.cli.common import console, fail, format_bitrate

DEFAULT_CODEC = "codeclab-16k-speech"


def register(app: typer.Typer) -> None:
    app.command("encode")(encode_command)
    app.command("decode")(decode_command)


def encode_command(
    source: Path = typer.Argument(..., help="Audio file."),
    target: Path = typer.Argument(..., help="Output .clab file."),
    codec: str = typer.Option(DEFAULT_CODEC, "--codec", help="Codec name or saved directory."),
    weights: str = typer.Option(None, "--weights"),
    random_init: bool = typer.Option(False, "--random-init", help="Use an untrained (random, seeded) codec."),
    seed: int = typer.Option(0, "--seed"),
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to keep (default: all)."),
) -> None:
    """Encode one audio file to a .clab bitstream."""
    from codeclab.audio.io import AudioError
    from codeclab.codecs.spec import CodecSpec
    from codeclab.pipelines.clab_files import encode_file

    try:
        size, seconds, n_q_used, codec_obj = encode_file(
            source, target, CodecSpec(codec, weights, random_init, seed), n_q
        )
    except (AudioError, ValueError) as err:
        fail(str(err))
    console.print(
        f"{target}: {size} bytes for {seconds:.2f} s ({size * 8 / seconds / 1000:.2f} kbps on disk; "
        f"nominal {format_bitrate(codec_obj.bitrate(n_q_used))} with {n_q_used} codebooks)"
    )


def decode_command(
    source: Path = typer.Argument(..., help=".clab file."),
    target: Path = typer.Argument(..., help="Output audio file (.wav, .flac)."),
    codec: str = typer.Option(None, "--codec", help="Override the codec recorded in the file."),
    weights: str = typer.Option(None, "--weights"),
    random_init: bool = typer.Option(False, "--random-init"),
) -> None:
    """Decode a .clab bitstream to audio."""
    from codeclab.codecs.spec import CodecSpec
    from codeclab.pipelines.clab_files import decode_file
    from codeclab.tokens.clab import ClabFormatError

    override = CodecSpec(codec, weights, random_init) if codec else None
    try:
        seconds = decode_file(source, target, override)
    except (ClabFormatError, ValueError) as err:
        fail(str(err))
    console.print(f"{target}: {seconds:.2f} s")
