import numpy as np
import pytest
import soundfile as sf

from codeclab.audio.io import AudioError, audio_info, load_audio, read_audio, stream_audio, to_channels
from tests.corpus_files import BAD, GOOD, write_bad


def test_reads_every_format(good_corpus):
    for rel, sr, ch, seconds in GOOD:
        x, rate = read_audio(good_corpus / rel)
        assert rate == sr and x.shape[0] == ch and x.dtype == np.float32
        assert abs(x.shape[1] / sr - seconds) < 0.06  # mp3/ogg frames may pad slightly


def test_resample_and_channel_policy(good_corpus):
    x = load_audio(good_corpus / "a/clip1.flac", 16000, channels=1)
    assert x.shape[0] == 1 and abs(x.shape[1] - 0.9 * 16000) <= 2
    stereo, _ = read_audio(good_corpus / "a/clip1.flac")
    assert np.allclose(to_channels(stereo, 1)[0], stereo.mean(0))
    mono = np.ones((1, 10), dtype=np.float32)
    assert to_channels(mono, 2).shape == (2, 10)
    with pytest.raises(AudioError, match="cannot feed"):
        to_channels(np.ones((2, 10), dtype=np.float32), 3)


def test_segment(good_corpus):
    x, sr = read_audio(good_corpus / "clip6.wav", start=0.5, end=1.0)
    whole, _ = read_audio(good_corpus / "clip6.wav")
    assert np.array_equal(x, whole[:, 8000:16000])
    with pytest.raises(AudioError, match="outside"):
        read_audio(good_corpus / "clip6.wav", start=10.0)


@pytest.mark.parametrize("rel", ["clip6.wav", "a/clip1.flac", "b/deep/clip3.wav"])
def test_stream_equals_whole(good_corpus, rel):
    whole = load_audio(good_corpus / rel, 16000, 1)
    streamed = np.concatenate(list(stream_audio(good_corpus / rel, 16000, 1, block_seconds=0.13)), axis=1)
    assert np.array_equal(whole, streamed)


def test_bad_files_name_the_problem(tmp_path):
    write_bad(tmp_path)
    for rel, reason in BAD.items():
        with pytest.raises(AudioError, match=reason) as info:
            load_audio(tmp_path / rel, 16000)
        assert str(tmp_path / rel) in str(info.value)
    with pytest.raises(AudioError, match="no such file"):
        audio_info(tmp_path / "missing.wav")


def test_inf_samples(tmp_path):
    sf.write(
        tmp_path / "inf.wav", np.array([0.0, np.inf, 0.0] * 100, dtype=np.float32), 16000, subtype="FLOAT"
    )
    with pytest.raises(AudioError, match="NaN or inf"):
        load_audio(tmp_path / "inf.wav", 16000)


def test_segment_past_the_end_is_an_error_not_a_clamp(good_corpus):
    path = good_corpus / "clip6.wav"
    duration = audio_info(path).duration
    x, sr = read_audio(path, 0.0, duration + 0.005)  # within the rounding tolerance
    assert x.shape[1] == audio_info(path).frames
    with pytest.raises(AudioError, match="lies past the end of the audio"):
        read_audio(path, 0.0, duration + 1.0)
    with pytest.raises(AudioError, match="invalid segment: start=nan"):
        read_audio(path, float("nan"), None)
