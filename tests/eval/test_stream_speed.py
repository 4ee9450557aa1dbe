"""`codeclab bench speed --stream`: per-chunk times, real-time factor and concurrent streams."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import codeclab
from codeclab.cli.app import app
from codeclab.eval.speed import measure_stream_speed


def test_stream_speed_doubles_streams_until_a_chunk_runs_late():
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    result = measure_stream_speed(codec, chunk_ms=80, seconds=0.6, max_streams=4)
    streams = [row["streams"] for row in result.by_streams]
    assert streams[0] == 1 and all(b == 2 * a for a, b in zip(streams, streams[1:]))
    realtime = [row["realtime"] for row in result.by_streams]
    assert realtime == sorted(realtime, reverse=True)  # once late, the search stops
    assert result.max_realtime_streams == max(
        [r["streams"] for r in result.by_streams if r["realtime"]], default=0
    )
    assert result.rtf == (result.encode_ms + result.decode_ms) / 80
    assert result.latency_ms["roundtrip_ms"] == 20.0
    for row in result.by_streams:
        assert row["realtime"] == (row["p95_ms"] < 80)


def test_bench_speed_stream_writes_its_tables(tmp_path):
    args = ["bench", "speed", "--stream", "--codec", "codeclab-tiny", "--random-init", "--seconds", "0.4"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "stream_speed.json").read_text())
    assert report["results"][0]["chunk_ms"] == 80.0
    assert (tmp_path / "stream_speed_by_streams.md").is_file()


def test_bench_speed_stream_names_a_codec_that_cannot_stream():
    args = [
        "bench",
        "speed",
        "--stream",
        "--codec",
        "codeclab-24k-audio",
        "--random-init",
        "--seconds",
        "0.4",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "not causal" in result.output
