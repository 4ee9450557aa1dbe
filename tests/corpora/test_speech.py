import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from codeclab.corpora import speech

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (make sysdeps)")


def _tone(path, seconds, sr=16000, freq=220.0):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), sr)


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Stand-ins for the Debian package trees: two asterisk voices (raw G.722), two ktuberling languages."""
    asterisk, ktub = tmp_path / "asterisk", tmp_path / "ktuberling"
    for voice in ("en_US_f_Allison", "it_IT_m_Carlo"):
        (asterisk / voice / "digits").mkdir(parents=True)
        for name in ("hello", "digits/1", "digits/2"):
            wav = tmp_path / "src.wav"
            _tone(wav, 2.0)
            subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(wav),
                    "-ar",
                    "16000",
                    "-f",
                    "g722",
                    str(asterisk / voice / f"{name}.g722"),
                ],
                check=True,
            )
    (asterisk / "en_US_f_Allison" / "empty.g722").write_bytes(b"")
    for lang in ("de", "fr"):
        (ktub / lang).mkdir(parents=True)
        for i in range(7):
            _tone(ktub / lang / f"w{i}.wav", 0.6, freq=300 + 20 * i)
            subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(ktub / lang / f"w{i}.wav"),
                    str(ktub / lang / f"w{i}.ogg"),
                ],
                check=True,
            )
    (ktub / "fr" / "broken.ogg").write_bytes(b"not an ogg file")
    monkeypatch.setattr(speech, "ASTERISK_ROOT", asterisk)
    monkeypatch.setattr(speech, "KTUBERLING_ROOT", ktub)
    monkeypatch.setattr(speech, "KLETTRES_ROOT", tmp_path / "absent")
    return tmp_path


def test_heldout_speakers_never_reach_the_training_manifest(fake_packages, tmp_path):
    out = tmp_path / "corpus"
    summary = speech.build_speech_corpus(out, eval_per_speaker=2)
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    heldout = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert {r["speaker"] for r in train} == {"asterisk-g722/en_US_f_Allison", "ktuberling/fr"}
    assert {r["speaker"] for r in heldout} == {"asterisk-g722/it_IT_m_Carlo", "ktuberling/de"}
    # same file names in different folders stay distinct files
    assert len({r["path"] for r in train}) == len(train) == 3 + 7
    assert all(r["licence"] and r["package"] and r["sample_rate"] == 16000 for r in train + heldout)
    # the broken file is named, the rest was built
    assert any("broken.ogg" in path for path in summary["failed"])
    assert any("empty.g722" in path for path in summary["too_short"])
    # the evaluation subset: long prompts as they are, single words joined into clips
    subset = [json.loads(line) for line in (out / "heldout-eval.jsonl").read_text().splitlines()]
    words = [r for r in subset if r["speaker"] == "ktuberling/de"]
    assert len(words) == 1 and len(words[0]["original"]) == 6 and words[0]["duration"] > 6 * 0.6
    assert sum(r["speaker"] == "asterisk-g722/it_IT_m_Carlo" for r in subset) == 2


def test_a_rebuild_keeps_decoded_files(fake_packages, tmp_path):
    out = tmp_path / "corpus"
    speech.build_speech_corpus(out, sources=["asterisk-g722"])
    first = next((out / "audio").rglob("hello.wav"))
    stamp = first.stat().st_mtime_ns
    speech.build_speech_corpus(out, sources=["asterisk-g722"])
    assert first.stat().st_mtime_ns == stamp


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sources"):
        speech.build_speech_corpus(tmp_path, sources=["nope"])
