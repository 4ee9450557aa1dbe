"""`codeclab encode - ... --stream` and `codeclab decode ... - --stream`: PCM or WAV on stdin, .clab
packets out as frames complete, PCM on stdout; the same codes and audio as whole-file commands."""

from __future__ import annotations

import io
import subprocess
import sys
import wave

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.cli.app import app
from codeclab.tokens.clab import read_clab

runner = CliRunner()
TINY = ["--codec", "codeclab-tiny", "--random-init"]


def _pcm16(seconds: float, seed: int) -> np.ndarray:
    wav = synthetic_speech(seconds, 16000, seed=seed).numpy()[0]
    return np.round(np.clip(wav, -1, 1) * 32767).astype("<i2")


def _wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def test_raw_pcm_on_stdin_streams_to_the_codes_of_a_whole_encode(tmp_path):
    samples = _pcm16(1.37, seed=3)
    result = runner.invoke(app, ["encode", "-", str(tmp_path / "s.clab"), *TINY], input=samples.tobytes())
    assert result.exit_code == 0, result.output
    clab = read_clab(tmp_path / "s.clab")
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    wav = torch.from_numpy(samples.astype(np.float32) / 32768.0)[None, None]
    assert np.array_equal(clab.codes, codec.encode(wav).codes[0].numpy())
    assert clab.audio_length == len(samples)

    result = runner.invoke(app, ["decode", str(tmp_path / "s.clab"), "-", *TINY])
    assert result.exit_code == 0, result.output
    pcm = np.frombuffer(result.stdout_bytes, dtype="<i2")
    whole = codec.decode(codec.encode(wav))[0, 0].numpy()
    assert len(pcm) == len(samples)
    assert np.abs(pcm.astype(np.float32) / 32767 - np.clip(whole, -1, 1)).max() < 2e-4  # 16-bit rounding


def test_a_wav_stream_piped_through_encode_and_decode(tmp_path):
    """ffmpeg-style use: WAV on stdin, .clab packets through a pipe, PCM out, with the default codec."""
    samples = _pcm16(0.9, seed=5)
    cli = [sys.executable, "-m", "codeclab.cli.app"]
    encode = subprocess.Popen([*cli, "encode", "-", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    decode = subprocess.Popen([*cli, "decode", "-", "-"], stdin=encode.stdout, stdout=subprocess.PIPE)
    encode.stdout.close()
    encode.stdin.write(_wav_bytes(samples))
    encode.stdin.close()
    pcm, _ = decode.communicate(timeout=300)
    assert encode.wait(timeout=60) == 0 and decode.returncode == 0
    codec = codeclab.load_codec("codeclab-16k-speech")
    wav = torch.from_numpy(samples.astype(np.float32) / 32768.0)[None, None]
    whole = codec.decode(codec.encode(wav))[0, 0].numpy()
    decoded = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767
    assert len(decoded) == len(samples)
    assert np.abs(decoded - np.clip(whole, -1, 1)).max() < 2e-4


def test_a_whole_file_clab_decodes_as_a_stream_too(tmp_path):
    source = tmp_path / "a.wav"
    (source).write_bytes(_wav_bytes(_pcm16(0.5, seed=1)))
    assert runner.invoke(app, ["encode", str(source), str(tmp_path / "a.clab"), *TINY]).exit_code == 0
    clab = read_clab(tmp_path / "a.clab")
    assert clab.header["packet_frames"] == 5  # version 3, 100 ms packets
    result = runner.invoke(app, ["decode", str(tmp_path / "a.clab"), "-", *TINY])
    assert result.exit_code == 0, result.output
    assert len(result.stdout_bytes) == 2 * 8000
    from codeclab.tokens.clab import to_bytes

    header = {
        k: v for k, v in clab.header.items() if k not in ("n_q", "frames", "bits", "coding", "packet_frames")
    }
    (tmp_path / "v1.clab").write_bytes(to_bytes(clab.codes, header))  # version 1 still decodes
    again = runner.invoke(app, ["decode", str(tmp_path / "v1.clab"), "-", *TINY])
    assert again.exit_code == 0
    v1, v3 = (np.frombuffer(r.stdout_bytes, "<i2").astype(int) for r in (again, result))
    assert v1.shape == v3.shape and np.abs(v1 - v3).max() <= 1  # decode steps of 500 or 5 frames: rounding


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["encode", "-", "{out}", *TINY], _wav_bytes(np.zeros(800, "<i2"), rate=22050), "22050 Hz"),
        (["encode", "-", "{out}", *TINY], b"", "empty audio"),
        (["encode", "-", "{out}", *TINY], b"\x01\x02\x03", "stray bytes"),
        (
            ["encode", "-", "{out}", "--codec", "codeclab-24k-audio", "--random-init"],
            b"\0" * 960,
            "not causal",
        ),
    ],
)
def test_bad_streams_exit_2_with_a_message_and_leave_no_file(tmp_path, args, stdin, message):
    from codeclab.catalog.loading import save_pretrained
    from tests.codecs.small_codecs import small_codec

    out, centred = tmp_path / "x.clab", tmp_path / "centred"
    save_pretrained(small_codec(causal=False), centred)
    result = runner.invoke(app, [a.format(out=out, centred=centred) for a in args], input=stdin)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_a_cut_stream_is_concealed_or_refused_with_strict(tmp_path):
    samples = _pcm16(0.5, seed=2)
    runner.invoke(app, ["encode", "-", str(tmp_path / "s.clab"), *TINY], input=samples.tobytes())
    blob = (tmp_path / "s.clab").read_bytes()
    cut = blob[:-40]  # the end packet and part of the last packet of codes
    result = runner.invoke(app, ["decode", "-", "-", *TINY], input=cut)
    assert result.exit_code == 0, result.output
    assert "damaged" in result.stderr and "end packet is missing" in result.stderr
    strict = runner.invoke(app, ["decode", "-", "-", "--strict", *TINY], input=cut)
    assert strict.exit_code == 2
    assert "truncated packet" in strict.output


def test_encode_takes_the_codec_grammar(tmp_path):
    """`--codec NAME:N` keeps N codebooks, as --n-q does; a contradiction exits 2."""
    source = tmp_path / "a.wav"
    source.write_bytes(_wav_bytes(_pcm16(0.4, seed=6)))
    result = runner.invoke(
        app, ["encode", str(source), str(tmp_path / "a.clab"), "--codec", "codeclab-tiny:2", "--random-init"]
    )
    assert result.exit_code == 0, result.output
    assert read_clab(tmp_path / "a.clab").header["n_q"] == 2
    result = runner.invoke(
        app,
        [
            "encode",
            str(source),
            str(tmp_path / "b.clab"),
            "--codec",
            "codeclab-tiny:2",
            "--n-q",
            "3",
            "--random-init",
        ],
    )
    assert result.exit_code == 2 and "contradicts" in result.output


def test_a_stream_that_lost_a_packet_decodes_to_full_length_with_the_loss_concealed(tmp_path):
    from codeclab.tokens.clab_packets import packet_spans

    samples = _pcm16(1.0, seed=4)
    runner.invoke(app, ["encode", "-", str(tmp_path / "s.clab"), *TINY], input=samples.tobytes())
    blob = (tmp_path / "s.clab").read_bytes()
    start, end = packet_spans(blob)[1][10]  # 20 ms packets: frame 10 is lost
    clean = runner.invoke(app, ["decode", "-", "-", *TINY], input=blob)
    lossy = runner.invoke(app, ["decode", "-", "-", *TINY], input=blob[:start] + blob[end:])
    assert lossy.exit_code == 0, lossy.output
    assert "1 frames concealed" in lossy.stderr and "packets 10..10 are missing" in lossy.stderr
    a, b = (np.frombuffer(r.stdout_bytes, "<i2") for r in (clean, lossy))
    hop = codeclab.load_codec("codeclab-tiny", random_init=True).hop_length
    assert a.shape == b.shape == samples.shape
    assert np.array_equal(a[: 10 * hop], b[: 10 * hop])  # causal: identical until the loss
    assert not np.array_equal(a[10 * hop : 11 * hop], b[10 * hop : 11 * hop])
