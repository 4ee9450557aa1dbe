"""Reconstruction benchmark: codecs x bitrates on one set of audio files.

For every codec (and every n_q of a token codec, or every setting of a classic codec) each item is loaded
at the codec's own rate, encoded and decoded (or round-tripped), mixed to mono and resampled to the
evaluation rate, where it is compared with the original item resampled once to that rate. Metrics then
resample further as they require (see `codeclab.eval.metrics`). Per codec and bitrate the report has the
mean of each metric over items, the nominal bitrate, the entropy-estimated bitrate (token codecs) or the
measured bitrate (classic codecs), and per-codebook usage, entropy and dead codes.

Codecs are named as `NAME[:key=value,...]`: `weights=DIR`, `random_init=true`, `seed=N`, `n_q=2+4+8` (token
codecs), `bitrate=6000` (opus), `mode=1200` (codec2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codeclab._progress import progress_task
from codeclab.audio.io import load_audio, resample
from codeclab.codecs.base import AudioCodec, Encoded, RoundTripCodec
from codeclab.codecs.ref import CodecRef
from codeclab.corpora.manifest import AudioItem, discover
from codeclab.eval import metrics as M
from codeclab.eval.report import (
    codec_fingerprint,
    data_fingerprint,
    plot_curves,
    provenance,
    write_json,
    write_table,
)

# `codeclab.codecs.ref.CodecRef` is the one codec grammar; benchmarks knew it as CodecChoice
CodecChoice = CodecRef


def default_n_q(num_codebooks: int) -> list[int]:
    values = {1, num_codebooks}
    q = 2
    while q < num_codebooks:
        values.add(q)
        q *= 2
    return sorted(values)


def _mono(x: torch.Tensor) -> np.ndarray:
    return x.float().mean(dim=0).cpu().numpy()


def _limit(items: list[AudioItem], max_items: int | None, max_seconds: float | None) -> list[AudioItem]:
    if max_items is not None:
        items = items[:max_items]
    if max_seconds is not None:
        from dataclasses import replace

        items = [
            replace(
                it,
                end=(it.start or 0.0) + max_seconds
                if it.end is None
                else min(it.end, (it.start or 0.0) + max_seconds),
            )
            for it in items
        ]
    return items


SCALING_METRICS = ("mel_distance", "stoi", "pesq_wb")


def bitrate_flags(
    rows: list[dict[str, Any]], higher_is_better: dict[str, bool], tolerance: float = 0.005
) -> list[str]:
    """Token codecs whose quality stops improving as n_q grows (codebooks that carry nothing).

    For each codec series with several n_q, and each of mel distance, STOI and PESQ-WB that was scored, a
    step from one n_q to the next larger one that does not improve the metric by more than `tolerance`
    (relative) is flagged. Returns one sentence per codec and metric.
    """
    flags = []
    by_codec: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("n_q") is not None:
            by_codec.setdefault(row["codec"], []).append(row)
    for codec, series in by_codec.items():
        series = sorted(series, key=lambda r: r["n_q"])
        if len(series) < 2:
            continue
        for metric in SCALING_METRICS:
            if metric not in higher_is_better:
                continue
            sign = 1.0 if higher_is_better[metric] else -1.0
            stalled = []
            for a, b in zip(series, series[1:]):
                va, vb = a.get(metric), b.get(metric)
                if not isinstance(va, float) or not isinstance(vb, float) or math.isnan(va) or math.isnan(vb):
                    continue
                if sign * (vb - va) <= tolerance * max(abs(va), 1e-9):
                    stalled.append(f"{a['n_q']}->{b['n_q']} ({va:.3f} -> {vb:.3f})")
            if stalled:
                flags.append(
                    f"{codec}: {metric} does not improve with more codebooks at n_q {', '.join(stalled)}: "
                    "those codebooks add little (collapsed codebooks, or a decoder that does not use them yet)"
                )
    return flags


@dataclass
class Measured:
    """One codec setting over the items: per-item scores, codes (token codecs) or measured bitrates
    (round-trip codecs)."""

    choice: CodecChoice
    codec: AudioCodec | RoundTripCodec
    n_q: int | None
    scores: dict[str, list[float]] = field(default_factory=dict)
    codes: list[np.ndarray] = field(default_factory=list)
    bitrates: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.choice.text if self.n_q is None else f"{self.choice.series()}:{self.n_q}"


def reconstruct(codec: AudioCodec | RoundTripCodec, x: Tensor, n_q: int | None) -> tuple[Tensor, Any, Any]:
    """x [C, T] -> (estimate [C, T], codes [n_q, F] or None, measured bits/s or None)."""
    if isinstance(codec, RoundTripCodec):
        result = codec.roundtrip(x[None])
        return result.audio[0], None, float(result.bitrate[0])
    encoded = codec.encode(x[None], n_q=n_q)
    estimate = codec.decode(Encoded(encoded.codes, encoded.lengths, encoded.audio_lengths))[0]
    return estimate, encoded.items()[0].cpu().numpy(), None


def measure(
    choice: CodecChoice,
    codec: AudioCodec | RoundTripCodec,
    n_q: int | None,
    items: list[AudioItem],
    references: dict[str, np.ndarray],
    reference_cache: dict[str, dict],
    metrics: list[str],
    eval_rate: int,
) -> Measured:
    """Reconstruct every item with one codec setting and score it against the reference at `eval_rate`."""
    measured = Measured(choice, codec, n_q)
    label = f"recon {choice.name}" + ("" if n_q is None else f":{n_q}")
    with progress_task(label, len(items), "items") as advance:
        for it in items:
            _measure_item(measured, codec, n_q, it, references, reference_cache, metrics, eval_rate)
            advance()
    return measured


def _measure_item(
    measured: Measured,
    codec: AudioCodec | RoundTripCodec,
    n_q: int | None,
    it: AudioItem,
    references: dict[str, np.ndarray],
    reference_cache: dict[str, dict],
    metrics: list[str],
    eval_rate: int,
) -> None:
    """Reconstruct one item and add its scores (and codes, bitrate) to `measured`."""
    x = torch.as_tensor(load_audio(it.path, codec.sample_rate, codec.channels, it.start, it.end))
    estimate, codes, bitrate = reconstruct(codec, x, n_q)
    if codes is not None:
        measured.codes.append(codes)
    if bitrate is not None:
        measured.bitrates.append(bitrate)
    est = resample(_mono(estimate)[None], codec.sample_rate, eval_rate)[0]
    scores = M.compute(
        references[it.id], est, eval_rate, metrics, it.text, it.language, reference_cache[it.id]
    )
    for key, value in scores.items():
        measured.scores.setdefault(key, []).append(value)


def aggregate(measured: Measured, items: int) -> dict[str, Any]:
    """One results row: bitrates (nominal, measured or entropy-coded) and each metric's mean over the items
    it could score (`METRIC_scored` says how many)."""
    codec, n_q = measured.codec, measured.n_q
    row: dict[str, Any] = {
        "codec": measured.choice.text,
        "series": measured.choice.series(),
        "label": measured.label,
        "n_q": n_q,
        "items": items,
    }
    if isinstance(codec, RoundTripCodec):
        row["nominal_kbps"] = codec.bitrate() / 1000
        row["bitrate_kbps"] = float(np.mean(measured.bitrates)) / 1000
    else:
        row["nominal_kbps"] = codec.bitrate(n_q) / 1000
        stats = M.codebook_statistics(measured.codes, codec.codebook_size, codec.frame_rate)
        row["bitrate_kbps"] = row["nominal_kbps"]
        row["entropy_kbps"] = stats["entropy_bitrate"] / 1000
        row["codebooks"] = stats["per_codebook"]
    for key, values in measured.scores.items():
        finite = [v for v in values if not math.isnan(v)]
        row[key] = float(np.mean(finite)) if finite else math.nan
        row[f"{key}_scored"] = len(finite)
    return row


def write_report(
    out: Path, report: dict[str, Any], usable: list[str], status: dict[str, str | None], eval_rate: int
) -> dict[str, Any]:
    """results.json, results.csv, results.md and plots/ under `out`; returns the report with its plots."""
    rows, flags = report["results"], report["flags"]
    write_json(report, out / "results.json")
    columns = [
        "label",
        "nominal_kbps",
        "bitrate_kbps",
        "entropy_kbps",
        *[m for m in usable if m != "f0_corr"],
    ]
    if "f0_rmse_cents" in usable:
        columns.append("f0_corr")
    if "dnsmos" in usable:
        columns.append("dnsmos_reference")
    if "wer" in usable:
        columns.append("wer_reference")
    notes = [
        f"{m}: {M.SPECS[m].description} ({'higher' if M.SPECS[m].higher_is_better else 'lower'} is better; "
        f"at {M.SPECS[m].rate or eval_rate} Hz)"
        for m in usable
    ]
    notes += [f"skipped {m}: {r}" for m, r in status.items() if r]
    notes += [f"WARNING: {flag}" for flag in flags]
    notes.append(
        f"provenance: {report['provenance']['command']}; codeclab {report['provenance']['codeclab_version']}; "
        f"data sha256 {report['provenance']['data']['sha256'][:16]}; {report['provenance']['machine']}"
    )
    write_table(rows, columns, out / "results", "Reconstruction benchmark", notes)
    labels = {"bitrate_kbps": "bitrate (kbps)", **{m: M.SPECS[m].description.split(",")[0] for m in usable}}
    report["plots"] = (
        [str(p) for p in plot_curves(rows, usable, "bitrate_kbps", "series", out / "plots", labels)]
        if rows
        else []
    )
    return report


def run_recon(
    codecs: list[str],
    data: list[str],
    out: str | Path,
    metrics: list[str] | None = None,
    eval_rate: int = 16000,
    max_items: int | None = None,
    max_seconds: float | None = None,
    random_init: bool = False,
    command: list[str] | None = None,
    log=print,
) -> dict[str, Any]:
    """Run the benchmark and write results.json, results.csv, results.md and plots/ under `out`:
    measure each codec setting, aggregate a row per setting, flag bitrates that buy nothing, write."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = metrics or M.DEFAULT_METRICS
    status = M.metric_status(names)
    usable = [m for m in names if not status[m]]
    for metric, reason in status.items():
        if reason:
            log(f"skipping {metric}: {reason}")
    items = _limit(discover(data), max_items, max_seconds)
    if not items:
        raise ValueError(f"no audio items in {data}")
    references = {it.id: load_audio(it.path, eval_rate, 1, it.start, it.end)[0] for it in items}
    reference_cache: dict[str, dict] = {it.id: {} for it in items}
    rows: list[dict[str, Any]] = []
    fingerprints: dict[str, Any] = {}
    for spec in codecs:
        choice = CodecChoice.parse(spec, random_init)
        codec = choice.load()
        fingerprints[spec] = codec_fingerprint(codec)
        classic = isinstance(codec, RoundTripCodec)
        for n_q in [None] if classic else (choice.n_q or default_n_q(codec.num_codebooks)):
            measured = measure(choice, codec, n_q, items, references, reference_cache, usable, eval_rate)
            row = aggregate(measured, len(items))
            rows.append(row)
            log(
                f"{row['label']}: "
                + ", ".join(f"{k} {row[k]:.3f}" for k in usable if isinstance(row.get(k), float))
            )
    flags = bitrate_flags(rows, {m: M.SPECS[m].higher_is_better for m in usable})
    for flag in flags:
        log(f"warning: {flag}")
    report = {
        "flags": flags,
        "provenance": provenance(
            command,
            codecs=fingerprints,
            data={
                "inputs": data,
                "items": len(items),
                "sha256": data_fingerprint(items),
                "max_items": max_items,
                "max_seconds": max_seconds,
            },
        ),
        "eval_rate": eval_rate,
        "metric_rates": {m: (M.SPECS[m].rate or eval_rate) for m in usable},
        "skipped_metrics": {m: r for m, r in status.items() if r},
        "metrics": {
            m: {"higher_is_better": M.SPECS[m].higher_is_better, "description": M.SPECS[m].description}
            for m in usable
        },
        "results": rows,
    }
    return write_report(out, report, usable, status, eval_rate)
