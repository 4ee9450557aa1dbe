"""`codeclab demo`: encode and decode a generated test signal with the default preset, offline."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from codeclab.cli.common import console, format_bitrate

DEFAULT_CODEC = "codeclab-16k-speech"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    out: Path = typer.Option(Path("demo-out"), help="Directory for input.wav and output.wav."),
    codec_name: str = typer.Option(DEFAULT_CODEC, "--codec", help="Codec name or saved directory."),
    seconds: float = typer.Option(4.0, help="Length of the generated test signal."),
) -> None:
    """Encode and decode a generated test signal; print codes shape, frame rate and bitrate."""
    import soundfile as sf
    import torch

    from codeclab.codecs.loading import load_codec
    from codeclab.codecs.registry import entries
    from codeclab.data.signals import test_signal

    registered = entries().get(codec_name)
    random_init = registered is not None and registered.family == "codeclab" and registered.weights is None
    codec = load_codec(codec_name, random_init=random_init)
    note = (
        " [yellow](random init: no trained weights released yet; the output is not meant to sound right)[/]"
    )
    console.print(f"codec [bold]{codec_name}[/]" + (note if random_init else ""))

    wav = test_signal(seconds, codec.sample_rate)[None]  # [1, 1, T]
    start = time.perf_counter()
    encoded = codec.encode(wav)
    encode_s = time.perf_counter() - start
    decoded = codec.decode(encoded)

    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / "input.wav", wav[0, 0].numpy(), codec.sample_rate)
    sf.write(out / "output.wav", decoded[0, 0].clamp(-1, 1).numpy(), codec.sample_rate)

    console.print(f"input: {seconds:g} s at {codec.sample_rate} Hz -> {out / 'input.wav'}")
    console.print(
        f"codes: shape {tuple(encoded.codes.shape)} \\[batch, codebooks, frames], dtype {encoded.codes.dtype}"
    )
    console.print(f"frame rate: {codec.frame_rate:g} frames/s; hop {codec.hop_length} samples")
    rates = ", ".join(
        f"n_q={n}: {format_bitrate(codec.bitrate(n))}" for n in range(1, codec.num_codebooks + 1)
    )
    console.print(f"bitrate: {rates}")
    console.print(f"encode: {seconds / encode_s:.1f}x real time on {torch.get_num_threads()} CPU threads")
    console.print(f"decoded: shape {tuple(decoded.shape)} -> {out / 'output.wav'}")
