"""R22 (reliability report 2026-12-04): a WAV or MP3 file cut short is a per-item error, not a shorter
item stored without a word."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from codeclab.audio.io import AudioError, load_audio


@pytest.fixture
def clips(tmp_path):
    x = (0.1 * np.sin(np.arange(32000) * 0.05)).astype(np.float32)
    sf.write(tmp_path / "whole.wav", x, 16000)
    blob = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(blob[: 44 + 1000])
    return tmp_path


def test_a_cut_wav_is_refused_and_a_whole_one_read(clips):
    assert load_audio(clips / "whole.wav", 16000).shape == (1, 32000)
    with pytest.raises(
        AudioError, match="truncated: the WAV header declares 2.000 s, the file holds 0.031 s"
    ):
        load_audio(clips / "cut.wav", 16000)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make sysdeps)")
def test_a_cut_mp3_is_refused(clips):
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(clips / "whole.wav"), str(clips / "a.mp3")],
        check=True,
    )
    assert load_audio(clips / "a.mp3", 16000).shape[1] > 31000
    blob = (clips / "a.mp3").read_bytes()
    (clips / "a.mp3").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(AudioError, match="truncated or damaged"):
        load_audio(clips / "a.mp3", 16000)


def test_tokenize_lists_a_cut_file_in_errors(clips, tmp_path):
    from codeclab.pipelines.tokenize import tokenize_corpus
    from tests.pipelines.test_tokenize import options

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(clips / "whole.wav", corpus / "whole.wav")
    shutil.copy(clips / "cut.wav", corpus / "cut.wav")
    report = tokenize_corpus(options([corpus], tmp_path / "store"))
    assert report.failed == 1 and report.tokenized == 1
    errors = [json.loads(line) for line in (tmp_path / "store" / "errors.jsonl").read_text().splitlines()]
    assert errors[0]["id"] == "cut.wav" and "truncated" in errors[0]["reason"]
