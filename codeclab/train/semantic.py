"""Semantic distillation targets: the teacher's features of every training file, computed once into a
cache before the first step (each rank its share), and read at the codec frame times of each crop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from codeclab.codecs.semantic import SemanticConfig
from codeclab.train.dataset import AudioDataset

log = logging.getLogger("codeclab.train")


class SemanticTargets:
    """Teacher features for a codec with `config.semantic`: `fill` before training, `at` per batch."""

    def __init__(self, cache: Any, sample_rate: int, hop_length: int) -> None:
        self.cache = cache  # codeclab.teachers.cache.TeacherCache
        self.frame_rate = sample_rate / hop_length

    @classmethod
    def open(
        cls,
        semantic: SemanticConfig,
        sample_rate: int,
        hop_length: int,
        root: Path,
        target_db: float | None,
        device: torch.device,
    ) -> SemanticTargets:
        """Load the teacher (checked against the head's `teacher_dim`) and its cache under `root`."""
        from codeclab.teachers import load_teacher
        from codeclab.teachers.cache import TeacherCache

        teacher = load_teacher(semantic.teacher, device=str(device))
        if teacher.dim != semantic.teacher_dim:
            raise ValueError(
                f"teacher {semantic.teacher} gives {teacher.dim}-dim features; the codec's semantic head "
                f"expects {semantic.teacher_dim}"
            )
        return cls(TeacherCache(root, teacher, target_db), sample_rate, hop_length)

    def fill(self, dataset: AudioDataset, rank: int, world: int) -> tuple[int, int]:
        """Compute this rank's share of the training files' features; (files, computed now)."""
        paths = sorted({clip.item.path for clip in dataset.clips})
        computed, _ = self.cache.fill(paths[rank::world])  # failures are logged
        return len(paths), computed

    def at(self, dataset: AudioDataset, clips: Tensor, offsets: Tensor, frames: int) -> Tensor:
        """Teacher features at the codec frame times of each crop (`clips` [B] indices into the dataset's
        clips, `offsets` [B] seconds into them): [B, frames, D_t]."""
        from codeclab.teachers import codec_frame_times, features_at

        teacher = self.cache.teacher
        out = []
        for c, offset in zip(clips.tolist(), offsets.tolist()):
            clip = dataset.clips[int(c)]
            features = self.cache.get(clip.item.path)
            times = codec_frame_times(frames, self.frame_rate, clip.start + float(offset))
            out.append(features_at(features, teacher.frame_rate, times))
        return torch.stack(out)
