"""Papercuts of the CLI (issue 34): --out that holds other files, threads of a stream, install lines
that work from a checkout, provenance without absolute paths."""

import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from codeclab.cli.app import app
from codeclab.eval.report import portable_command, provenance

runner = CliRunner()
TINY = ["--codec", "codeclab-tiny", "--random-init"]


def test_tokenize_refuses_an_out_folder_that_holds_other_files(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["tokenize", str(tmp_path / "a.wav"), "--out", str(tmp_path / "mine"), *TINY])
    assert (
        result.exit_code == 2
        and "not part of a token store" in result.output
        and "notes.txt" in result.output
    )
    assert sorted(os.listdir(tmp_path / "mine")) == ["notes.txt"]  # nothing written there
    result = runner.invoke(app, ["tokenize", str(tmp_path / "a.wav"), "--out", str(tmp_path / "new"), *TINY])
    assert result.exit_code == 0, result.output


def test_a_stream_runs_on_one_thread_unless_told(tmp_path):
    sf.write(
        tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 16000
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = runner.invoke(
            app, ["encode", str(tmp_path / "a.wav"), str(tmp_path / "a.clab"), "--stream", *TINY]
        )
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        args = [
            "encode",
            str(tmp_path / "a.wav"),
            str(tmp_path / "b.clab"),
            "--stream",
            "--threads",
            "2",
            *TINY,
        ]
        assert runner.invoke(app, args).exit_code == 0 and torch.get_num_threads() == 2
        assert (tmp_path / "a.clab").read_bytes() == (tmp_path / "b.clab").read_bytes()  # same bytes
        bad = runner.invoke(app, [*args[:-3], "--threads", "0", *TINY])
        assert bad.exit_code == 2 and "--threads must be at least 1" in bad.output
    finally:
        torch.set_num_threads(before)


def test_missing_extras_name_the_checkout_install_line(monkeypatch):
    from codeclab._optional import optional_import

    monkeypatch.setitem(sys.modules, "lhotse", None)
    with pytest.raises(
        ImportError,
        match=r"pip install 'codeclab\[lhotse\]' \(from a checkout: pip install -e '\.\[lhotse\]'\)",
    ):
        optional_import("lhotse", "lhotse", "reading lhotse manifests")


def test_provenance_records_commands_without_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [
        "/home/me/.venv/bin/codeclab",
        "bench",
        "suite",
        str(tmp_path / "data" / "m.jsonl"),
        "--out",
        "x y",
    ]
    assert portable_command(argv) == "codeclab bench suite data/m.jsonl --out 'x y'"
    assert "/home" not in provenance(argv)["command"]


def test_detokenize_names_a_missing_id_without_a_python_repr(tmp_path):
    sf.write(
        tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(3200)).astype(np.float32), 16000
    )
    runner.invoke(app, ["tokenize", str(tmp_path / "a.wav"), "--out", str(tmp_path / "s"), *TINY])
    result = runner.invoke(
        app, ["detokenize", str(tmp_path / "s"), "--out", str(tmp_path / "w"), "--ids", "nope[x].wav"]
    )
    assert result.exit_code == 2 and "'nope[x].wav' is not in" in result.output
    assert "\"'nope" not in result.output  # not the KeyError's doubly quoted repr


def test_a_run_without_a_terminal_logs_progress_lines(tmp_path):
    sf.write(
        tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(3200)).astype(np.float32), 16000
    )
    result = runner.invoke(app, ["tokenize", str(tmp_path / "a.wav"), "--out", str(tmp_path / "s"), *TINY])
    assert result.exit_code == 0
    assert "tokenize: 1/1 items, 0.00 h audio," in result.output and "0 errors" in result.output
