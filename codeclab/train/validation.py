"""Validation during codec training: mel distance on validation crops (with audio samples written), and
mel distance and STOI on held-out speech (`eval_data`)."""

from __future__ import annotations

from pathlib import Path

import torch

from codeclab.audio.io import write_audio
from codeclab.audio.spectral import mel_distance
from codeclab.codecs.neural import NeuralCodec
from codeclab.train.config import TrainConfig
from codeclab.train.dataset import AudioDataset


@torch.no_grad()
def validate(
    codec: NeuralCodec,
    val_set: AudioDataset,
    eval_set: AudioDataset | None,
    config: TrainConfig,
    samples_dir: Path,
    device: torch.device,
) -> dict[str, float]:
    """`val/mel_distance` over the first `val_items` validation items (the first `samples_to_write` of
    them written to `samples_dir` as original/reconstruction pairs), plus `score_heldout`'s figures."""
    codec.eval()
    distances = []
    for i in range(min(config.val_items, len(val_set))):
        wav = val_set.full(i, config.val_seconds).to(device)
        recon = codec.decode(codec.encode(wav[None]))[0]
        distances.append(float(mel_distance(wav, recon, codec.sample_rate)))
        if i < config.samples_to_write:
            write_audio(samples_dir / f"{i:02d}_original.wav", wav.cpu().numpy(), codec.sample_rate)
            write_audio(samples_dir / f"{i:02d}_reconstruction.wav", recon.cpu().numpy(), codec.sample_rate)
    result = {"val/mel_distance": sum(distances) / len(distances)}
    if eval_set is not None:
        result.update(score_heldout(codec, eval_set, config, device))
    return result


@torch.no_grad()
def score_heldout(
    codec: NeuralCodec, eval_set: AudioDataset, config: TrainConfig, device: torch.device
) -> dict[str, float]:
    """Mean mel distance and STOI (when pystoi is installed) over the held-out items (`eval_data`)."""
    try:
        import pystoi
    except ImportError:
        pystoi = None
    distances, stois = [], []
    for i in range(min(config.eval_items, len(eval_set))):
        wav = eval_set.full(i, config.eval_seconds).to(device)
        recon = codec.decode(codec.encode(wav[None]))[0]
        distances.append(float(mel_distance(wav, recon, codec.sample_rate)))
        if pystoi is not None:
            ref, est = wav[0].cpu().double().numpy(), recon[0].cpu().double().numpy()
            stois.append(float(pystoi.stoi(ref, est, codec.sample_rate, extended=False)))
    out = {"heldout/mel_distance": sum(distances) / len(distances)}
    if stois:
        out["heldout/stoi"] = sum(stois) / len(stois)
    return out
