"""`codeclab encode` / `codeclab decode`: one audio file to a .clab file and back."""

from __future__ import annotations

from pathlib import Path

import typer

from codeclab.cli.common import codec_from_options, console, err_console, fail, format_bitrate

DEFAULT_CODEC = "codeclab-16k-speech"


def register(app: typer.Typer) -> None:
    app.command("encode")(encode_command)
    app.command("decode")(decode_command)


def encode_command(
    source: Path = typer.Argument(..., help="Audio file, or - for WAV or raw s16le PCM on stdin."),
    target: Path = typer.Argument(..., help="Output .clab file, or - for stdout."),
    codec: str = typer.Option(
        DEFAULT_CODEC,
        "--codec",
        help="NAME[@WEIGHTS][:N][,key=value] or a saved directory (docs/codecs.md#naming-a-codec).",
    ),
    weights: str = typer.Option(
        None, "--weights", help="Weights directory for a registry name (as NAME@WEIGHTS)."
    ),
    random_init: bool = typer.Option(False, "--random-init", help="Use an untrained (random, seeded) codec."),
    seed: int = typer.Option(0, "--seed", help="Seed of a --random-init codec."),
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to keep (default: all)."),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Encode as audio arrives and write .clab packets as frames complete (causal codecs; implied by -).",
    ),
) -> None:
    """Encode one audio file to a .clab bitstream."""
    from codeclab.audio.io import AudioError
    from codeclab.pipelines.clab_files import encode_file

    spec, n_q = codec_from_options(codec, weights, random_init, seed, n_q)
    if stream or str(source) == "-" or str(target) == "-":
        _encode_streaming(source, target, spec, n_q)
        return
    try:
        size, seconds, n_q_used, codec_obj = encode_file(source, target, spec, n_q)
    except (AudioError, ValueError) as err:
        fail(err)
    console.print(
        f"{target}: {size} bytes for {seconds:.2f} s ({size * 8 / seconds / 1000:.2f} kbps on disk; "
        f"nominal {format_bitrate(codec_obj.bitrate(n_q_used))} with {n_q_used} codebooks)"
    )


def decode_command(
    source: Path = typer.Argument(..., help=".clab file, or - for stdin."),
    target: Path = typer.Argument(
        ..., help="Output audio file (.wav, .flac), or - for raw s16le PCM on stdout."
    ),
    codec: str = typer.Option(
        None, "--codec", help="Override the codec recorded in the file (NAME[@WEIGHTS] or a directory)."
    ),
    weights: str = typer.Option(
        None, "--weights", help="Weights directory for a registry name (as NAME@WEIGHTS)."
    ),
    random_init: bool = typer.Option(
        False, "--random-init", help="With --codec: an untrained (random, seeded) codec."
    ),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Decode packets as they arrive and write PCM as audio completes (implied by -).",
    ),
) -> None:
    """Decode a .clab bitstream to audio."""
    from codeclab.pipelines.clab_files import decode_file
    from codeclab.tokens.clab import ClabFormatError

    override = codec_from_options(codec, weights, random_init)[0] if codec else None
    if stream or str(source) == "-" or str(target) == "-":
        _decode_streaming(source, target, override)
        return
    try:
        seconds = decode_file(source, target, override)
    except (ClabFormatError, ValueError) as err:
        fail(err)
    console.print(f"{target}: {seconds:.2f} s")


def _encode_streaming(source: Path, target: Path, spec, n_q: int | None) -> None:
    """`encode --stream`: blocks of 80 ms from stdin (WAV or s16le) or from a file, packets out flushed."""
    from codeclab.audio.io import AudioError, stream_audio
    from codeclab.audio.pcm import PCMError, read_pcm_blocks
    from codeclab.codecs.modules.state import StreamingUnsupported
    from codeclab.pipelines.clab_stream import encode_to_stream, open_binary

    try:
        probe = spec.load()
        block = max(int(0.08 * probe.sample_rate), 1)
        if str(source) == "-":
            blocks = read_pcm_blocks(open_binary(source, "rb"), probe.sample_rate, probe.channels, block)
        else:
            blocks = stream_audio(source, probe.sample_rate, probe.channels)
        out = open_binary(target, "wb")
    except (AudioError, PCMError, ValueError, OSError) as err:
        fail(err)
    try:
        frames, samples, codec_obj = encode_to_stream(blocks, out, spec, n_q, codec=probe)
    except (AudioError, PCMError, StreamingUnsupported, ValueError, OSError) as err:
        if str(target) != "-":
            out.close()
            target.unlink(missing_ok=True)  # a stream cut short leaves no half file behind
        fail(err)
    if str(target) != "-":
        out.close()
    err_console.print(
        f"{target}: {frames} frames for {samples / codec_obj.sample_rate:.2f} s (streamed .clab, version 2)"
    )


def _decode_streaming(source: Path, target: Path, override) -> None:
    """`decode --stream`: .clab (packets as they arrive) to s16le PCM on stdout, or to a WAV/FLAC file."""
    from codeclab.codecs.modules.state import StreamingUnsupported
    from codeclab.pipelines.clab_stream import decode_to_pcm, open_binary
    from codeclab.tokens.clab import ClabFormatError

    if str(target) != "-":
        fail(f"{target}: `decode --stream` writes raw PCM to stdout; give - as the target (or drop --stream)")
    where = "stdin" if str(source) == "-" else str(source)
    try:
        inp = open_binary(source, "rb")
        seconds = decode_to_pcm(inp, open_binary(target, "wb"), override, where)
    except (ClabFormatError, StreamingUnsupported, ValueError, OSError) as err:
        fail(err)
    err_console.print(f"{where}: {seconds:.2f} s decoded to s16le PCM")
