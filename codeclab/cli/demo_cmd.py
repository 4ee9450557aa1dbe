"""`codeclab demo`: the main jobs, offline: encode/decode a real speech clip shipped in the package (and
score the result), write a .clab bitstream, and tokenize a small generated corpus into a token store."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from codeclab._optional import install_hint
from codeclab.cli.common import console, format_bitrate

DEFAULT_CODEC = "codeclab-16k-speech"
SPEECH_CLIP = Path(__file__).resolve().parent.parent / "assets" / "speech" / "it_IT_m_Carlo__vm-intro.flac"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def _write_corpus(root: Path, clips: int, sample_rates: tuple[int, ...] = (16000, 44100, 48000)) -> float:
    import soundfile as sf

    from codeclab.audio.signals import synthetic_speech

    root.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for i in range(clips):
        sr = sample_rates[i % len(sample_rates)]
        seconds = 2.0 + (i * 1.7) % 6
        sf.write(
            root / f"clip{i:03d}.{'flac' if i % 2 else 'wav'}",
            synthetic_speech(seconds, sr, seed=i).numpy()[0],
            sr,
        )
        total += seconds
    return total


def demo_command(
    out: Path = typer.Option(Path("demo-out"), help="Directory for the demo's outputs."),
    codec_name: str = typer.Option(DEFAULT_CODEC, "--codec", help="Codec name or saved directory."),
    seconds: float = typer.Option(7.0, help="At most this much of the speech clip."),
    clips: int = typer.Option(12, help="Clips in the generated corpus."),
) -> None:
    """Encode/decode a real speech clip, write a .clab file and tokenize a generated corpus."""

    import torch

    from codeclab.audio.io import write_audio
    from codeclab.audio.signals import synthetic_speech
    from codeclab.catalog.ref import CodecRef
    from codeclab.catalog.registry import entries

    registered = entries().get(codec_name)
    random_init = registered is not None and registered.family == "codeclab" and registered.weights is None
    spec = CodecRef(codec_name, random_init=random_init)
    codec = spec.load()
    note = " [yellow](random init: no trained weights found; the output is not meant to sound right)[/]"
    console.print(f"codec [bold]{escape(codec_name)}[/]" + (note if random_init else ""), markup=True)
    out.mkdir(parents=True, exist_ok=True)

    # 1. encode and decode a real speech clip (held-out speaker; see codeclab/assets/speech/README.md)
    from codeclab.audio.io import load_audio

    if SPEECH_CLIP.is_file():
        audio = load_audio(SPEECH_CLIP, codec.sample_rate, codec.channels)
        wav = torch.as_tensor(audio[..., : int(seconds * codec.sample_rate)])[None]
        source = f"real speech ({SPEECH_CLIP.name}, CC-BY-SA-3.0)"
    else:
        wav = synthetic_speech(seconds, codec.sample_rate)[None]  # [1, 1, T]
        source = "a synthetic speech-like signal (the bundled clip is missing)"
    seconds = wav.shape[-1] / codec.sample_rate
    start = time.perf_counter()
    encoded = codec.encode(wav)
    encode_s = time.perf_counter() - start
    decoded = codec.decode(encoded)
    write_audio(out / "input.wav", wav[0].numpy(), codec.sample_rate)
    write_audio(out / "output.wav", decoded[0].numpy(), codec.sample_rate)
    console.print(
        f"\n[bold]1. encode / decode[/] {seconds:.1f} s of {escape(str(source))} at {codec.sample_rate} Hz",
        markup=True,
    )
    console.print(f"listen: original {out / 'input.wav'}, decoded {out / 'output.wav'}")
    console.print(_scores(wav[0], decoded[0], codec.sample_rate))
    console.print(
        f"codes: shape {tuple(encoded.codes.shape)} [batch, codebooks, frames], dtype {encoded.codes.dtype}"
    )
    console.print(f"frame rate: {codec.frame_rate:g} frames/s; hop {codec.hop_length} samples")
    rates = ", ".join(
        f"n_q={n}: {format_bitrate(codec.bitrate(n))}" for n in range(1, codec.num_codebooks + 1)
    )
    console.print(f"bitrate: {rates}")
    console.print(f"encode: {seconds / encode_s:.1f}x real time on {torch.get_num_threads()} CPU threads")

    _bitstream_step(out, spec, codec)
    _tokenize_step(out, spec, clips)


def _bitstream_step(out: Path, spec, codec) -> None:
    """2. a .clab bitstream of the clip, with its size against the nominal bitrate."""
    from codeclab.pipelines.clab_files import encode_file

    written = encode_file(out / "input.wav", out / "input.clab", spec)
    console.print(
        f"\n[bold]2. bitstream[/] {escape(str(out / 'input.clab'))}: {written.size} bytes for {written.seconds:.1f} s with "
        f"{written.n_q} codebooks, {written.coding} coded: {written.payload * 8 / written.seconds / 1000:.2f} "
        f"kbps of codes, {written.size * 8 / written.seconds / 1000:.2f} kbps as a file (header and packet framing) "
        f"(nominal {format_bitrate(codec.bitrate(written.n_q))})",
        markup=True,
    )


def _tokenize_step(out: Path, spec, clips: int) -> None:
    """3. a generated corpus tokenized into a store, one item read back."""
    import shutil

    from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
    from codeclab.tokens.store import TokenStore

    corpus, store = out / "corpus", out / "tokens"
    shutil.rmtree(store, ignore_errors=True)
    audio_s = _write_corpus(corpus, clips)
    report = tokenize_corpus(TokenizeOptions(inputs=[str(corpus)], out=store, codec=spec, workers=1))
    tokens = TokenStore(store)
    first = tokens[tokens.ids()[0]]
    console.print(
        f"\n[bold]3. tokenize[/] {clips} clips ({audio_s:.0f} s, WAV/FLAC at 16/44.1/48 kHz) -> {escape(str(store))}",
        markup=True,
    )
    console.print(
        f"{report.tokenized} tokenized, {report.failed} failed, {report.realtime_factor:.1f}x real time "
        f"(including worker start-up); {first.id}: codes {first.codes.shape} {first.codes.dtype}"
    )
    console.print(
        f"read it back: python -c \"import codeclab; s = codeclab.TokenStore('{store}'); print(len(s), s.ids()[:3])\""
    )


def _scores(reference, estimate, sample_rate: int) -> str:
    """One line of figures for the decoded clip: mel distance, and STOI / PESQ-WB when installed."""
    from codeclab.audio.spectral import mel_distance

    n = min(reference.shape[-1], estimate.shape[-1])
    ref, est = reference[..., :n], estimate[..., :n]
    parts = [f"mel distance {float(mel_distance(ref, est, sample_rate)):.3f} (lower is better)"]
    try:
        from codeclab.eval.metrics import pesq_score, stoi_score

        r, e = ref[0].double().numpy(), est[0].double().numpy()
        parts.append(f"STOI {stoi_score(r, e, sample_rate):.3f}")
        parts.append(f"PESQ-WB {pesq_score(r, e, sample_rate, 'wb'):.2f}")
    except ImportError:
        parts.append(f"STOI and PESQ need the bench extra: {install_hint('bench')}")
    return "quality: " + ", ".join(parts)
