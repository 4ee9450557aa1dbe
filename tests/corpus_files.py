from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codeclab.audio.signals import synthetic_speech

GOOD = [
    # (relative path, sample rate, channels, seconds)
    ("a/clip0.wav", 16000, 1, 1.3),
    ("a/clip1.flac", 44100, 2, 0.9),
    ("b/clip2.ogg", 22050, 1, 0.7),
    ("b/deep/clip3.wav", 48000, 2, 1.7),
    ("clip4.flac", 8000, 1, 0.21),
    ("clip5.mp3", 16000, 1, 1.1),
    ("clip6.wav", 16000, 1, 2.4),
    ("clip7.wav", 24000, 1, 0.05),
]
BAD = {
    "bad/empty.wav": "empty file",
    "bad/text.flac": "unreadable or not audio",
    "bad/garbage.wav": "unreadable or not audio",
    "bad/nan.wav": "NaN or inf",
    "bad/zero.wav": "zero-length",
    "bad/rate.wav": "implausible sample rate",
}


def write_good(root: Path) -> None:
    for i, (rel, sr, ch, seconds) in enumerate(GOOD):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        x = synthetic_speech(seconds, sr, seed=i).numpy()[0]
        if ch == 2:
            x = np.stack([x, -0.5 * x], axis=1)
        sf.write(path, x, sr)


def write_bad(root: Path) -> None:
    (root / "bad").mkdir(parents=True, exist_ok=True)
    (root / "bad/empty.wav").write_bytes(b"")
    (root / "bad/text.flac").write_text("this is not audio\n" * 20)
    (root / "bad/garbage.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    sf.write(
        root / "bad/nan.wav", np.array([0.1, np.nan, -0.1] * 500, dtype=np.float32), 16000, subtype="FLOAT"
    )
    sf.write(root / "bad/zero.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(root / "bad/rate.wav", np.zeros(500, dtype=np.float32), 50)


@pytest.fixture
def good_corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    write_good(root)
    return root


@pytest.fixture
def mixed_corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    write_good(root)
    write_bad(root)
    return root
