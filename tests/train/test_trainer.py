import json
import os
import subprocess
import sys

import pytest
import torch

from codeclab.catalog.fingerprint import weights_sha256
from codeclab.catalog.presets import tiny
from codeclab.train.trainer import Trainer

from .conftest import quick, small_codec


def metrics(run_dir, split="train"):
    return [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == split
    ]


def test_one_step_gives_finite_losses_and_changes_weights(train_corpus, tmp_path):
    trainer = Trainer(tiny(), quick(steps=1), [str(train_corpus)], tmp_path / "run", show_progress=False)
    trainer.run()
    row = metrics(tmp_path / "run")[0]
    for key in ("loss/mel", "loss/adv", "loss/fm", "loss/quantizer", "loss/disc", "loss/total"):
        assert torch.isfinite(torch.tensor(row[key])), key
    from codeclab.codecs.neural import NeuralCodec

    torch.manual_seed(0)  # the trainer builds its codec right after seeding with config.seed (0)
    initial = dict(NeuralCodec.from_config(tiny()).named_parameters())
    changed = [n for n, p in trainer.codec.named_parameters() if not torch.equal(p.detach(), initial[n])]
    assert len(changed) > 0.5 * len(initial)
    assert (tmp_path / "run" / "codec" / "model.safetensors").is_file()  # the final codec is saved
    assert list((tmp_path / "run" / "samples").rglob("*_reconstruction.wav"))


@pytest.mark.slow  # 60 s on 2 cores; the learning itself is covered by the codebook-health test
def test_small_config_overfits_one_clip(tmp_path):
    import soundfile as sf

    from codeclab.audio.signals import synthetic_speech

    (tmp_path / "one").mkdir()
    sf.write(tmp_path / "one" / "clip.wav", synthetic_speech(1.0, 16000, seed=3).numpy()[0], 16000)
    cfg = quick(
        steps=200,
        segment_seconds=1.0,
        adversarial=False,
        lr=2e-3,
        warmup_steps=10,
        log_every=10,
        val_fraction=0.0,
    )
    Trainer(small_codec(), cfg, [str(tmp_path / "one")], tmp_path / "run", show_progress=False).run()
    mel = [r["loss/mel"] for r in metrics(tmp_path / "run")]
    assert mel[-1] < 0.5 * mel[0], mel


def test_stop_and_resume_equals_not_stopping(train_corpus, tmp_path):
    cfg = quick(steps=6, balancer=True, stft_weight=1.0, num_workers=2)
    Trainer(tiny(), cfg, [str(train_corpus)], tmp_path / "straight", show_progress=False).run()
    first = Trainer(tiny(), cfg, [str(train_corpus)], tmp_path / "stopped", show_progress=False)
    first.run(stop_after=3)
    assert not (tmp_path / "stopped" / "codec").exists()
    resumed = Trainer(
        tiny(), cfg, [str(train_corpus)], tmp_path / "stopped", resume=True, show_progress=False
    )
    resumed.run()
    straight, stopped = metrics(tmp_path / "straight"), metrics(tmp_path / "stopped")
    assert [r["step"] for r in stopped] == list(range(6))
    for a, b in zip(straight, stopped):
        for key in ("loss/mel", "loss/adv", "loss/disc", "loss/quantizer", "lr"):
            assert a[key] == b[key], (a["step"], key, a[key], b[key])
    rank = json.loads((tmp_path / "straight" / "ranks" / "rank0.json").read_text())["weights_sha256"]
    assert rank == json.loads((tmp_path / "stopped" / "ranks" / "rank0.json").read_text())["weights_sha256"]


def test_two_process_gloo_ddp_ends_with_identical_weights(train_corpus, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29517"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "codeclab.cli.app",
        "train",
        "--preset",
        "codeclab-tiny",
        "--data",
        str(train_corpus),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--segment-seconds",
        "0.4",
        "--device",
        "cpu",
        "--set",
        "num_workers=0",
        "--set",
        "disc_width=0.05",
        "--set",
        "validate_every=1000",
        "--set",
        "log_every=1",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    shas = {
        json.loads(p.read_text())["weights_sha256"] for p in (tmp_path / "run" / "ranks").glob("rank*.json")
    }
    assert len(list((tmp_path / "run" / "ranks").glob("rank*.json"))) == 2 and len(shas) == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["world_size"] == 2
    import codeclab

    codec = codeclab.load_codec(tmp_path / "run" / "codec")
    assert weights_sha256(codec) in shas


def test_stft_loss_joins_at_stft_start_and_discriminators_join_a_resumed_run(train_corpus, tmp_path):
    run = tmp_path / "run"
    first = quick(steps=5, adversarial=False, stft_weight=1.0, stft_start=2)
    Trainer(tiny(), first, [str(train_corpus)], run, show_progress=False).run(stop_after=3)
    rows = metrics(run)
    assert ["loss/stft" in r for r in rows] == [False, False, True]
    # resumed with the discriminators on: the checkpoint has no discriminator state, so they start fresh
    second = quick(steps=5, adversarial=True, stft_weight=1.0, stft_start=2)
    Trainer(tiny(), second, [str(train_corpus)], run, resume=True, show_progress=False).run()
    rows = metrics(run)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert ["loss/disc" in r for r in rows] == [False, False, False, True, True]
