"""Every codebook earns its bits: a short batch-8 CPU run on real speech (tests/assets/speech, licences in
its README) keeps every RVQ stage in use, and held-out reconstruction improves with every doubling of n_q."""

from pathlib import Path

import pytest
import torch

from codeclab.audio.io import load_audio
from codeclab.audio.spectral import mel_distance
from codeclab.codecs.modules.istft import ISTFTDecoderConfig
from codeclab.codecs.modules.seanet import SEANetConfig
from codeclab.codecs.neural import CodecConfig
from codeclab.quantizers import RVQConfig
from codeclab.train.config import TrainConfig
from codeclab.train.trainer import Trainer

pytestmark = pytest.mark.slow  # a 400-step training run: about 90 s on 2 cores

SPEECH = Path(__file__).resolve().parent.parent / "assets" / "speech"
HELDOUT_SPEAKER = "it_IT_m_Carlo"
# Floor on every stage's EMA perplexity after the run, as a fraction of the codebook size. Before the fix
# (replace-then-lookup, absolute dead-code threshold, no centring) stages 2-8 sat at 1-2 codes.
PERPLEXITY_FLOOR = 0.2
K = 32


def codec_config() -> CodecConfig:
    ratios = [2, 4, 5, 8]
    return CodecConfig(
        16000,
        SEANetConfig(dimension=32, n_filters=8, ratios=ratios, causal=True),
        ISTFTDecoderConfig(dimension=32, hop=320, width=96, blocks=2),
        RVQConfig(dim=32, codebook_size=K, num_quantizers=8, quantizer_dropout=1.0),
    )


def train_small_codec(workdir: Path, batch: int = 8, steps: int = 400) -> tuple:
    """Train `codec_config()` on the shipped speech without the held-out speaker, on one thread (the same
    arithmetic whatever the machine's core count); returns (trainer, last metrics). The benchmark
    benchmarks/codebook_health.py runs this same training at other batch sizes."""
    train_dir = workdir / "train"
    train_dir.mkdir()
    for path in SPEECH.glob("*.flac"):
        if not path.name.startswith(HELDOUT_SPEAKER):
            (train_dir / path.name).symlink_to(path)
    config = TrainConfig(
        steps=steps,
        batch_size=batch,
        segment_seconds=0.5,
        lr=2e-3,
        warmup_steps=20,
        adversarial=False,
        num_workers=0,
        log_every=10,
        validate_every=10**6,
        checkpoint_every=10**6,
        val_items=1,
        samples_to_write=0,
    )
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = Trainer(
            codec_config(), config, [str(train_dir)], workdir / "run", device="cpu", show_progress=False
        )
        last = trainer.run()
    finally:
        torch.set_num_threads(threads)
    return trainer, last


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    trainer, last = train_small_codec(tmp_path_factory.mktemp("codebook_health"))
    return trainer.codec.eval(), last


def test_every_stage_stays_in_use_at_batch_8(trained):
    _, last = trained
    print("EMA perplexity by stage:", [round(last[f"q{q}/ema_perplexity"], 1) for q in range(8)])
    for q in range(8):
        perplexity = last[f"q{q}/ema_perplexity"]
        assert perplexity > PERPLEXITY_FLOOR * K, f"stage {q + 1}: EMA perplexity {perplexity:.1f}"


def heldout_mel_by_n_q(codec, n_qs=(1, 2, 4, 8)) -> list[float]:
    """Mean mel distance over the held-out speaker's clips (peak-normalised to 0.5), per n_q."""
    clips = sorted(SPEECH.glob(f"{HELDOUT_SPEAKER}*.flac"))
    assert clips, "the held-out test clips are missing"
    distances = []
    with torch.no_grad():
        for n_q in n_qs:
            total = 0.0
            for clip in clips:
                wav = torch.as_tensor(load_audio(clip, 16000, 1))[None]
                wav = wav / wav.abs().max() * 0.5
                out = codec.decode(codec.encode(wav, n_q=n_q))
                total += float(mel_distance(wav[0], out[0], 16000))
            distances.append(total / len(clips))
    return distances


def test_heldout_mel_distance_improves_with_every_doubling_of_n_q(trained):
    codec, _ = trained
    distances = heldout_mel_by_n_q(codec)
    print(f"held-out mel distance by n_q 1/2/4/8: {distances}")
    assert all(b < a for a, b in zip(distances, distances[1:])), f"mel distance by n_q 1/2/4/8: {distances}"
