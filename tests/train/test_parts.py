import random

import numpy as np
import pytest
import torch

from codeclab.audio.loudness import normalise_loudness
from codeclab.audio.spectral import log_mel, mel_filterbank
from codeclab.train.balancer import Balancer
from codeclab.train.checkpoint import (
    flatten,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unflatten,
)
from codeclab.train.dataset import AudioDataset, TrainingBatches
from codeclab.train.discriminators import Discriminators
from codeclab.train.losses import (
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)


def test_mel_filterbank_shape_and_placement():
    fb = mel_filterbank(16000, 1024, 40)
    assert fb.shape == (40, 513) and float(fb.max()) <= 1.0 + 1e-6
    t = torch.arange(16000) / 16000
    low, high = torch.sin(2 * torch.pi * 200 * t), torch.sin(2 * torch.pi * 5000 * t)
    assert int(log_mel(low, 16000, 1024, 40).mean(-1).argmax()) < int(
        log_mel(high, 16000, 1024, 40).mean(-1).argmax()
    )


def test_losses_are_zero_for_identical_and_grow_with_noise():
    x = torch.randn(2, 1, 8000)
    mel = MultiScaleMelLoss(16000)
    assert float(mel(x, x)) == 0.0
    errors = [float(mel(x + s * torch.randn_like(x), x)) for s in (0.01, 0.1, 1.0)]
    assert errors[0] < errors[1] < errors[2]
    feats = [[torch.randn(2, 3, 4)]]
    assert float(feature_matching_loss(feats, feats)) == 0.0
    real, fake = [torch.full((2, 5), 2.0)], [torch.full((2, 5), -2.0)]
    assert (
        float(discriminator_loss(real, fake, "hinge")) == 0.0
        and float(generator_adversarial_loss(real, "hinge")) == 0.0
    )


def test_discriminators_shapes():
    d = Discriminators(width=0.05)
    logits, feats = d(torch.randn(2, 1, 4001))
    assert len(logits) == len(feats) == 8 and all(x.shape[0] == 2 for x in logits)


def test_balancer_gives_each_loss_its_share():
    y = torch.randn(4, 10, requires_grad=True)
    losses = {"big": 1000.0 * y.pow(2).sum(), "small": 0.001 * y.sum()}
    balancer = Balancer({"big": 3.0, "small": 1.0}, reference_norm=1.0, ema_decay=0.0)
    combined, norms = balancer.combined_gradient(losses, y)
    g_big = torch.autograd.grad(losses["big"], y, retain_graph=True)[0]
    g_small = torch.autograd.grad(losses["small"], y)[0]
    part_big = 0.75 * g_big / g_big.norm(dim=1).mean()
    part_small = 0.25 * g_small / g_small.norm(dim=1).mean()
    assert torch.allclose(combined, part_big + part_small, rtol=1e-4, atol=1e-6)
    assert norms["big"] > 1e5 * norms["small"]


def test_checkpoint_round_trip_without_pickle(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.99))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)
    opt.step()
    sched.step()
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "rng": rng_state(),
    }
    path = save_checkpoint(tmp_path, 7, state)
    assert latest_checkpoint(tmp_path) == path
    assert {p.name for p in path.iterdir()} == {"state.json", "tensors.safetensors"}
    step, loaded = load_checkpoint(path)
    assert step == 7
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    opt2.load_state_dict(loaded["opt"])
    assert opt2.state_dict()["param_groups"][0]["betas"] == (0.8, 0.99)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    set_rng_state(loaded["rng"])
    a = (torch.rand(3), np.random.rand(), random.random())
    set_rng_state(state["rng"])
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    tensors = {}
    assert unflatten(flatten({"x": (1, [2.5, "s"]), 3: None}, tensors), tensors) == {
        "x": (1, [2.5, "s"]),
        3: None,
    }
    with pytest.raises(TypeError):
        flatten({"f": lambda: 0}, {})


def test_keeps_only_the_newest_checkpoints(tmp_path):
    for step in range(5):
        save_checkpoint(tmp_path, step, {"x": torch.tensor([step])}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == [
        "step_00000003",
        "step_00000004",
    ]


def test_dataset_skips_bad_files_and_crops(train_corpus):
    ds = AudioDataset([str(train_corpus)], 16000, segment_seconds=0.5, split=None)
    assert len(ds) == 6 and ds.skipped and "broken.wav" in ds.skipped[0][0]
    crop, n = ds.crop(torch.Generator().manual_seed(0))
    assert crop.shape == (1, 8000) and n == 8000
    level = 20 * np.log10(float(crop.pow(2).mean().sqrt()))
    assert abs(level - (-20.0)) < 1.0 or float(crop.abs().max()) > 0.98


def test_batches_depend_only_on_seed_and_step(train_corpus):
    ds = AudioDataset([str(train_corpus)], 16000, segment_seconds=0.3)
    a = TrainingBatches(ds, 3, seed=1, start_step=0, steps=4)
    b = TrainingBatches(ds, 3, seed=1, start_step=2, steps=4)
    first = list(a)
    assert torch.equal(first[2]["wav"], next(iter(b))["wav"])
    loader = torch.utils.data.DataLoader(a, batch_size=None, num_workers=2)
    assert [int(x["step"]) for x in loader] == [0, 1, 2, 3]
    assert all(torch.equal(x["wav"], y["wav"]) for x, y in zip(loader, first))


def test_loudness_normalisation():
    x = np.random.default_rng(0).normal(size=(1, 16000)).astype(np.float32) * 0.01
    y = normalise_loudness(x, -20.0)
    assert abs(20 * np.log10(np.sqrt(np.mean(y**2))) + 20) < 0.5
    quiet = normalise_loudness(x * 0.01, -20.0)  # 60 dB below the target: the gain stops at +30 dB
    assert abs(20 * np.log10(np.sqrt(np.mean(quiet**2))) - (20 * np.log10(0.0001) + 30)) < 0.5
    loud = np.ones((1, 100), dtype=np.float32) * 3
    assert float(np.abs(normalise_loudness(loud, -1.0)).max()) <= 0.99 + 1e-6
