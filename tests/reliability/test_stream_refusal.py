"""R21 (reliability report 2026-12-04): `decode - -` writes no audio for a stream it then refuses."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from codeclab.cli.app import app
from codeclab.tokens.clab_packets import packet_spans

TINY = ["--codec", "codeclab-tiny", "--random-init"]


def test_a_stream_with_no_readable_packet_writes_nothing(tmp_path):
    import soundfile as sf

    source = tmp_path / "a.wav"
    sf.write(source, (0.1 * np.random.default_rng(0).standard_normal(48000)).astype(np.float32), 16000)
    runner = CliRunner()
    assert runner.invoke(app, ["encode", str(source), str(tmp_path / "a.clab"), *TINY]).exit_code == 0
    blob = (tmp_path / "a.clab").read_bytes()
    first_packet = packet_spans(blob)[1][0][0]
    result = runner.invoke(app, ["decode", "-", "-", *TINY], input=blob[: first_packet + 1])
    assert result.exit_code == 2
    assert "no packet of codes could be read" in result.stderr
    assert result.stdout_bytes == b""
