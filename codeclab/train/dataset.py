"""Audio for codec training: random fixed-length crops from directories and manifests.

`AudioDataset` reads each file's header once (unreadable files are skipped and logged, never a crashed
run), then serves crops: decoded with soundfile (only the needed frames), mixed to the codec's channels,
resampled with soxr and loudness-normalised to a target RMS level (clipping avoided). `TrainingBatches`
turns it into an endless, resumable stream: the batch of step s is a pure function of (seed, s, rank), so
a run resumed at step s sees exactly the batches it would have seen, whatever the DataLoader workers do.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from codeclab.audio.io import AudioError, AudioInfo, audio_info, read_audio, resample, to_channels
from codeclab.audio.loudness import normalise_loudness
from codeclab.corpora.manifest import AudioItem, discover

log = logging.getLogger("codeclab.data")


@dataclass
class Clip:
    item: AudioItem
    info: AudioInfo
    start: float  # seconds into the file where the usable part begins
    duration: float  # seconds usable


def split_of(item: AudioItem, val_fraction: float) -> str:
    """The manifest's split if given, else a stable hash split of the id."""
    if item.split is not None:
        return (
            "validation" if item.split.lower() in ("val", "valid", "validation", "dev", "test") else "train"
        )
    return "validation" if zlib.crc32(item.id.encode()) % 10_000 < val_fraction * 10_000 else "train"


class AudioDataset:
    """Crops of `segment_seconds` at `sample_rate` from the items of `inputs` (one split of them)."""

    def __init__(
        self,
        inputs: list[str],
        sample_rate: int,
        channels: int = 1,
        segment_seconds: float = 1.0,
        split: str | None = None,
        val_fraction: float = 0.05,
        target_db: float = -20.0,
    ) -> None:
        self.sample_rate, self.channels, self.segment_seconds, self.target_db = (
            sample_rate,
            channels,
            segment_seconds,
            target_db,
        )
        self.clips: list[Clip] = []
        self.skipped: list[tuple[str, str]] = []
        for item in discover(inputs):
            if split is not None and split_of(item, val_fraction) != split:
                continue
            try:
                info = audio_info(item.path)
            except AudioError as err:
                self.skipped.append((item.path, err.reason))
                log.warning("skipping %s: %s", item.path, err.reason)
                continue
            start = item.start or 0.0
            end = info.duration if item.end is None else min(item.end, info.duration)
            if end - start <= 0.01:
                self.skipped.append((item.path, "segment shorter than 10 ms"))
                continue
            self.clips.append(Clip(item, info, start, end - start))
        if not self.clips:
            raise ValueError(
                f"no usable audio in {inputs} (split {split!r}); skipped {len(self.skipped)} file(s)"
            )
        durations = torch.tensor([c.duration for c in self.clips], dtype=torch.float64)
        self.weights = durations / durations.sum()  # crops sample audio uniformly over time

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def total_seconds(self) -> float:
        return float(sum(c.duration for c in self.clips))

    def read(self, clip: Clip, offset: float, seconds: float) -> np.ndarray:
        """[channels, n] float32 at the dataset's rate, n <= seconds * rate, loudness-normalised."""
        x, sr = read_audio(clip.item.path, clip.start + offset, clip.start + offset + seconds)
        x = resample(to_channels(x, self.channels, clip.item.path), sr, self.sample_rate)
        return normalise_loudness(x[:, : int(round(seconds * self.sample_rate))], self.target_db)

    def crop(self, generator: torch.Generator, attempts: int = 20) -> tuple[Tensor, int]:
        """A random crop [channels, segment] (zero-padded) and its valid length. Files that fail now are
        skipped (logged) and another is drawn."""
        wav, n, _, _ = self.located_crop(generator, attempts)
        return wav, n

    def located_crop(self, generator: torch.Generator, attempts: int = 20) -> tuple[Tensor, int, int, float]:
        """`crop`, plus where it came from: the clip index and the offset (seconds) into the clip."""
        segment = int(round(self.segment_seconds * self.sample_rate))
        for _ in range(attempts):
            index = int(torch.multinomial(self.weights, 1, generator=generator))
            clip = self.clips[index]
            room = max(0.0, clip.duration - self.segment_seconds)
            offset = float(torch.rand((), generator=generator, dtype=torch.float64)) * room
            try:
                x = self.read(clip, offset, min(self.segment_seconds, clip.duration))
            except AudioError as err:
                log.warning("skipping a crop of %s: %s", clip.item.path, err.reason)
                continue
            out = torch.zeros(self.channels, segment)
            n = min(segment, x.shape[1])
            out[:, :n] = torch.from_numpy(x[:, :n])
            return out, n, index, offset
        raise RuntimeError(f"{attempts} crops in a row failed to decode; is the corpus still readable?")

    def full(self, index: int, max_seconds: float) -> Tensor:
        """The first `max_seconds` of clip `index` [channels, n] (validation)."""
        clip = self.clips[index]
        return torch.from_numpy(self.read(clip, 0.0, min(max_seconds, clip.duration)))


def batch_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**62)


class TrainingBatches(torch.utils.data.IterableDataset):
    """Batches for steps start_step, start_step + 1, ...: {"step", "wav" [B, C, S], "lengths" [B],
    "clips" [B] (clip indices into the dataset), "offsets" [B] (seconds into each clip, float64)}."""

    def __init__(
        self,
        dataset: AudioDataset,
        batch_size: int,
        seed: int = 0,
        start_step: int = 0,
        rank: int = 0,
        steps: int | None = None,
    ) -> None:
        self.dataset, self.batch_size, self.seed, self.start_step, self.rank, self.steps = (
            dataset,
            batch_size,
            seed,
            start_step,
            rank,
            steps,
        )

    def batch(self, step: int) -> dict:
        gen = torch.Generator().manual_seed(batch_seed(self.seed, step, self.rank))
        crops = [self.dataset.located_crop(gen) for _ in range(self.batch_size)]
        return {
            "step": step,
            "wav": torch.stack([c[0] for c in crops]),
            "lengths": torch.tensor([c[1] for c in crops]),
            "clips": torch.tensor([c[2] for c in crops]),
            "offsets": torch.tensor([c[3] for c in crops], dtype=torch.float64),
        }

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        step = self.start_step + worker
        end = math.inf if self.steps is None else self.steps
        while step < end:
            yield self.batch(step)
            step += workers


def batch_loader(
    train_set: AudioDataset,
    batch_size: int,
    seed: int,
    start_step: int,
    rank: int,
    steps: int,
    num_workers: int,
) -> torch.utils.data.DataLoader:
    """The loader of this rank's training batches from `start_step` on (`TrainingBatches`)."""
    batches = TrainingBatches(train_set, batch_size, seed, start_step, rank, steps)
    return torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers else None,
        persistent_workers=False,
        # its own generator: creating the iterator must not draw from the global RNG, which a resumed run
        # restores from the checkpoint (batches themselves depend only on seed, step and rank)
        generator=torch.Generator().manual_seed(seed),
    )
