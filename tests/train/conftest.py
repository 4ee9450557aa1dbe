from pathlib import Path

import pytest
import soundfile as sf

from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.modules.seanet import SEANetConfig
from codeclab.codecs.neural import CodecConfig
from codeclab.quantizers import RVQConfig
from codeclab.train.config import TrainConfig


@pytest.fixture(scope="session")
def train_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_corpus")
    for i in range(6):
        sf.write(root / f"c{i}.wav", synthetic_speech(1.5, 16000, seed=i).numpy()[0], 16000)
    (root / "broken.wav").write_bytes(b"not audio at all")
    return root


def small_codec() -> CodecConfig:
    """Small but able to memorise a clip: the encoder of codeclab-tiny's shape, a wider Snake decoder."""
    ratios = [2, 4, 5, 8]
    return CodecConfig(
        16000,
        SEANetConfig(dimension=32, n_filters=8, ratios=ratios, causal=True),
        SEANetConfig(
            dimension=32, n_filters=16, ratios=ratios, causal=True, activation="snake", n_residual_layers=1
        ),
        RVQConfig(dim=32, codebook_size=128, num_quantizers=4),
    )


def quick(**overrides) -> TrainConfig:
    base = dict(
        steps=6,
        batch_size=2,
        segment_seconds=0.4,
        num_workers=0,
        log_every=1,
        checkpoint_every=1000,
        validate_every=1000,
        val_items=1,
        disc_width=0.05,
        warmup_steps=2,
        samples_to_write=1,
    )
    base.update(overrides)
    return TrainConfig(**base)
