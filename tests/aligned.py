"""A phone-aligned tone corpus and a phone teacher trained on it (fixtures shared by several test packages)."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TONES = {"a": 300.0, "i": 900.0, "s": None, "sil": 0.0}  # "s": noise


def tone_utterance(seed: int, sr: int = 16000) -> tuple[np.ndarray, list[list]]:
    """Audio of random 'phones' (tones, noise, silence) and its exact segmentation."""
    rng = np.random.default_rng(seed)
    pieces, phones, t = [], [], 0.0
    for _ in range(8):
        name = ["a", "i", "s", "sil"][int(rng.integers(4))]
        dur = float(rng.uniform(0.08, 0.25))
        n = int(dur * sr)
        x = np.arange(n) / sr
        if name == "s":
            piece = 0.1 * rng.standard_normal(n)
        elif name == "sil":
            piece = np.zeros(n)
        else:
            piece = 0.3 * np.sin(2 * np.pi * TONES[name] * x)
        pieces.append(piece)
        phones.append([t, t + n / sr, name])
        t += n / sr
    return np.concatenate(pieces).astype(np.float32), phones


@pytest.fixture(scope="session")
def aligned_corpus(tmp_path_factory) -> Path:
    """A manifest of tone 'utterances' with phone sidecars, 8 train and 3 validation items."""
    root = tmp_path_factory.mktemp("aligned")
    rows = []
    for i in range(11):
        audio, phones = tone_utterance(i)
        sf.write(root / f"u{i}.wav", audio, 16000)
        (root / f"u{i}.wav.phones.json").write_text(json.dumps({"sample_rate": 16000, "phones": phones}))
        rows.append(
            {
                "id": f"u{i}",
                "path": f"u{i}.wav",
                "phones": f"u{i}.wav.phones.json",
                "split": "validation" if i >= 8 else "train",
            }
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="session")
def phone_teacher(aligned_corpus, tmp_path_factory):
    from codeclab.teachers.phone import PhoneTeacherConfig, train_phone_teacher

    out = tmp_path_factory.mktemp("teacher") / "phone"
    config = PhoneTeacherConfig(channels=32, dilations=[1, 2])
    teacher = train_phone_teacher(
        aligned_corpus / "manifest.jsonl", out, steps=120, batch_size=8, seconds=1.0, lr=5e-3, config=config
    )
    return out, teacher
