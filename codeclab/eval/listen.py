"""What the listening page plays: which items, and each codec setting's output of them at its own rate and
at the evaluation rate, with the item's own scores and the setting's bitrate.

Items are chosen after scoring (`choose_items`): the first N, N at random (seeded), the N worst (lowest
mean of the headline metric over every setting), or named ids. Their outputs are made again for the
page (`listening_items`), so the benchmark does not hold every output of every item in memory.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from codeclab.audio.io import load_audio, read_audio, resample
from codeclab.corpora.manifest import AudioItem
from codeclab.eval import metrics as M

LISTEN_MODES = ("first", "worst", "random")
HEADLINE = ("stoi", "pesq_wb", "mel_distance", "si_sdr", "stft_distance")


@dataclass
class Player:
    """One playable version of an item: the original or a codec setting's output."""

    label: str
    native: np.ndarray  # mono [T] at `native_rate`
    native_rate: int
    at_eval: np.ndarray  # mono [T] at the evaluation rate, as scored
    kbps: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class ListenItem:
    id: str
    players: list[Player]


def choose_items(
    mode: str, count: int, items: list[AudioItem], settings, usable: list[str]
) -> list[AudioItem]:
    """The items of the page: `mode` is first, worst, random, or comma-separated ids."""
    if mode not in LISTEN_MODES:
        wanted = [i for i in mode.split(",") if i]
        known = {it.id: it for it in items}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ValueError(
                f"--listen: no item {missing[0]!r} in the data (use first, worst, random or ids such as {items[0].id!r})"
            )
        return [known[i] for i in wanted]
    if mode == "first":
        return items[:count]
    if mode == "random":
        return random.Random(0).sample(items, min(count, len(items)))
    metric = next((m for m in HEADLINE if m in usable), None)
    if metric is None:
        return items[:count]
    sign = 1.0 if M.SPECS[metric].higher_is_better else -1.0
    means: dict[str, list[float]] = {}
    for measured in settings:
        for row in measured.items:
            value = row.get(metric)
            if isinstance(value, float) and math.isfinite(value):
                means.setdefault(row["item"], []).append(sign * value)
    ranked = sorted(items, key=lambda it: float(np.mean(means[it.id])) if it.id in means else math.inf)
    return ranked[:count]


def _mono(x) -> np.ndarray:
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    return x.mean(axis=0) if x.ndim == 2 else x


def listening_items(
    chosen: list[AudioItem], settings, rows: list[dict[str, Any]], eval_rate: int, reconstruct
) -> list[ListenItem]:
    """For each chosen item: the original (its file's own rate, and the evaluation rate) and each
    setting's output (the codec's rate, and the evaluation rate), labelled with the setting's coded kbps
    and the item's scores. `reconstruct(codec, x, n_q)` is recon's own."""
    kbps = {row["label"]: row.get("bitrate_kbps") for row in rows}
    out = []
    for it in chosen:
        native, rate = read_audio(it.path, it.start, it.end)
        original = load_audio(it.path, eval_rate, 1, it.start, it.end)[0]
        players = [Player("original", native.mean(axis=0), rate, original)]
        for measured in settings:
            codec = measured.codec
            row: dict[str, Any] = next((r for r in measured.items if r["item"] == it.id), {})
            x = torch.as_tensor(load_audio(it.path, codec.sample_rate, codec.channels, it.start, it.end))
            try:
                estimate = _mono(reconstruct(codec, x, measured.n_q)[0])
            except Exception:  # noqa: BLE001 (the codec failed on this item: silence, scored as failed)
                estimate = np.zeros(x.shape[-1], dtype=np.float32)
            at_eval = resample(estimate[None], codec.sample_rate, eval_rate)[0]
            scores = {k: v for k, v in row.items() if k in M.SPECS and isinstance(v, float)}
            players.append(
                Player(
                    measured.label,
                    estimate,
                    codec.sample_rate,
                    at_eval,
                    kbps.get(measured.label),
                    scores,
                    dict(row.get("failed", {})),
                )
            )
        out.append(ListenItem(it.id, players))
    return out
