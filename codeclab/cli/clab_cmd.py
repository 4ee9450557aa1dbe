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
    n_q: int | None = typer.Option(None, "--n-q", help="Codebooks to keep (default: all)."),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Encode as audio arrives and write .clab packets as frames complete (causal codecs; implied by -).",
    ),
    coding: str = typer.Option(
        "auto",
        "--coding",
        help="auto (range coded when the codec ships an entropy model, else bits), range or bits.",
    ),
    packet_ms: float = typer.Option(
        None,
        "--packet-ms",
        help="Milliseconds of audio per packet (default 100; 20 with --stream, for latency).",
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        help="CPU threads for the model (default: 1 when streaming, where small pieces run faster on one "
        "thread; torch's default otherwise).",
    ),
) -> None:
    """Encode one audio file to a .clab bitstream (version 3: packets that survive loss)."""
    from codeclab.audio.io import AudioError
    from codeclab.pipelines.clab_files import DEFAULT_PACKET_MS, encode_file

    spec, n_q = codec_from_options(codec, weights, random_init, seed, n_q)
    if str(source) != "-" and str(target) != "-" and _same_file(source, target):
        fail(f"{target}: the target is the input file; write the .clab file elsewhere")
    streaming = stream or str(source) == "-" or str(target) == "-"
    set_threads(threads, streaming)
    if streaming:
        _encode_streaming(
            source, target, spec, n_q, coding, STREAM_PACKET_MS if packet_ms is None else packet_ms
        )
        return
    try:
        done = encode_file(source, target, spec, n_q, coding=coding, packet_ms=packet_ms or DEFAULT_PACKET_MS)
    except (AudioError, ValueError) as err:
        fail(err)
    codes_kbps = done.payload * 8 / done.seconds / 1000
    console.print(
        f"{target}: {done.size} bytes for {done.seconds:.2f} s; {done.coding} coded: {codes_kbps:.2f} kbps of "
        f"codes, {done.size * 8 / done.seconds / 1000:.2f} kbps as a file (header and packet framing); nominal "
        f"{format_bitrate(done.codec.bitrate(done.n_q))} with {done.n_q} codebooks"
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
    strict: bool = typer.Option(
        False, "--strict", help="Refuse a damaged file (naming the packet) instead of concealing lost frames."
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        help="CPU threads for the model (default: 1 when streaming, where small pieces run faster on one "
        "thread; torch's default otherwise).",
    ),
) -> None:
    """Decode a .clab bitstream to audio; lost or damaged packets are concealed and counted."""
    from codeclab.pipelines.clab_files import decode_file
    from codeclab.tokens.clab import ClabFormatError

    override = codec_from_options(codec, weights, random_init)[0] if codec else None
    if str(target) != "-":
        from codeclab.audio.io import audio_format

        try:
            audio_format(target)  # a usage error before any decoding: out.txt, a directory
        except ValueError as err:
            fail(err)
        if target.is_dir():
            fail(f"{target}: is a directory; give an audio file name (.wav, .flac)")
        if str(source) != "-" and _same_file(source, target):
            fail(f"{target}: the target is the input file; write the audio elsewhere")
    streaming = stream or str(source) == "-" or str(target) == "-"
    set_threads(threads, streaming)
    if streaming:
        _decode_streaming(source, target, override, strict)
        return
    try:
        done = decode_file(source, target, override, strict=strict)
    except (ClabFormatError, ValueError) as err:
        fail(err)
    console.print(f"{target}: {done.seconds:.2f} s")
    report_damage(str(source), done.concealed_frames, done.damage)


def set_threads(threads: int | None, streaming: bool) -> None:
    """torch's CPU threads: `threads` when given, else 1 for a stream (one stream of 20-80 ms pieces runs
    several times faster on one thread than on a busy machine's many), else torch's default."""
    import torch

    if threads is not None and threads < 1:
        fail(f"--threads must be at least 1, got {threads}")
    if threads is not None or streaming:
        torch.set_num_threads(threads or 1)


def report_damage(where: str, concealed: int, damage: list[str]) -> None:
    """Say on stderr what a lenient decode concealed (nothing when the file was whole)."""
    if not damage:
        return
    err_console.print(f"{where}: damaged; {concealed} frames concealed ({len(damage)} problems):")
    for line in damage[:10]:
        err_console.print(f"  {line}")
    if len(damage) > 10:
        err_console.print(f"  ... and {len(damage) - 10} more")


STREAM_PACKET_MS = 20.0  # one frame per packet when streaming: packets add no latency


def _encode_streaming(
    source: Path, target: Path, spec, n_q: int | None, coding: str, packet_ms: float
) -> None:
    """`encode --stream`: blocks of 80 ms from stdin (WAV or s16le) or from a file, packets out flushed."""
    from codeclab._files import temp_path_for
    from codeclab.audio.io import AudioError, stream_audio
    from codeclab.audio.pcm import PCMError, read_pcm_blocks
    from codeclab.codecs.modules.state import StreamingUnsupported
    from codeclab.pipelines.clab_stream import encode_to_stream, open_binary

    to_file = str(target) != "-"
    if to_file and str(source) != "-" and _same_file(source, target):
        fail(f"{target}: the target is the input file; write the .clab file elsewhere")
    tmp = None
    try:
        probe = spec.load()
        block = max(int(0.08 * probe.sample_rate), 1)
        if str(source) == "-":
            blocks = read_pcm_blocks(open_binary(source, "rb"), probe.sample_rate, probe.channels, block)
        else:
            if not source.is_file():
                raise AudioError(source, "no such file")
            blocks = stream_audio(source, probe.sample_rate, probe.channels)
        # a file target is written under a temporary name and renamed at the end: an existing file is
        # replaced only by a whole stream, and a refused input leaves it as it was
        tmp = temp_path_for(target) if to_file else None
        out = open(tmp, "wb") if tmp is not None else open_binary(target, "wb")
    except (AudioError, PCMError, ValueError, OSError) as err:
        fail(err)
    try:
        frames, samples, codec_obj = encode_to_stream(
            blocks, out, spec, n_q, codec=probe, coding=coding, packet_ms=packet_ms
        )
        if tmp is not None:
            out.close()
            tmp.replace(target)
    except (AudioError, PCMError, StreamingUnsupported, ValueError, OSError) as err:
        if tmp is not None:
            out.close()
            tmp.unlink(missing_ok=True)  # a stream cut short leaves no half file behind
        fail(err)
    except BaseException:
        if tmp is not None:
            out.close()
            tmp.unlink(missing_ok=True)
        raise
    err_console.print(
        f"{target}: {frames} frames for {samples / codec_obj.sample_rate:.2f} s (streamed .clab, version 3)"
    )


def _same_file(a: Path, b: Path) -> bool:
    """True when paths a and b name one existing file."""
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _decode_streaming(source: Path, target: Path, override, strict: bool) -> None:
    """`decode --stream`: .clab (packets as they arrive) to s16le PCM on stdout, or to a WAV/FLAC file."""
    from codeclab.codecs.modules.state import StreamingUnsupported
    from codeclab.pipelines.clab_stream import decode_to_pcm, open_binary
    from codeclab.tokens.clab import ClabFormatError
    from codeclab.tokens.clab_packets import PacketReport

    if str(target) != "-":
        fail(f"{target}: `decode --stream` writes raw PCM to stdout; give - as the target (or drop --stream)")
    where = "stdin" if str(source) == "-" else str(source)
    try:
        inp = open_binary(source, "rb")
        report = PacketReport()
        seconds = decode_to_pcm(inp, open_binary(target, "wb"), override, where, strict, report)
    except (ClabFormatError, StreamingUnsupported, ValueError, OSError) as err:
        fail(err)
    err_console.print(f"{where}: {seconds:.2f} s decoded to s16le PCM")
    report_damage(where, report.concealed_frames, report.damage)
