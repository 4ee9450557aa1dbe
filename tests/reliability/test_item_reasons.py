"""R23 (reliability report 2026-12-04): each failed item's reason says what is wrong with it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from codeclab.audio.io import AudioError, read_audio


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    return path


def test_a_huge_start_is_past_the_end(wav):
    with pytest.raises(AudioError, match="start=1e\\+308 s lies outside the audio"):
        read_audio(wav, start=1e308)


def test_a_segment_shorter_than_a_sample_says_so(wav):
    with pytest.raises(AudioError, match="shorter than one sample"):
        read_audio(wav, start=0.5, end=0.5 + 1e-7)


def test_a_directory_or_a_pipe_is_named_for_what_it_is(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(AudioError, match="is a directory"):
        read_audio(tmp_path / "d.wav")
    os.mkfifo(tmp_path / "p.wav")
    with pytest.raises(AudioError, match="not a regular file"):
        read_audio(tmp_path / "p.wav")
