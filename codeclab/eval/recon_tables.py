"""The reconstruction benchmark's results: one measured codec setting (`Measured`), its row of means with
bootstrap intervals, the original audio's row, bitrate flags, and the written tables, plots and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.roundtrip import RoundTripCodec
from codeclab.eval import metrics as M
from codeclab.eval.report import plot_curves, write_json, write_jsonl, write_table

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
    """One codec setting over the items: per-item score rows (every item, scored, failed or skipped),
    each metric's values (a failed item at its worst score), codes (token codecs) or coded bytes
    (round-trip codecs), and the seconds of audio."""

    choice: CodecRef
    codec: AudioCodec | RoundTripCodec
    n_q: int | None
    scores: dict[str, list[float]] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    payload_bytes: int = 0
    container_bytes: int = 0
    seconds: float = 0.0
    align_ms: float = 0.0  # search this far for the output's delay before scoring (0: no alignment)
    clab_sizes: Any = None  # token codecs: codes, audio length -> (.clab payload bytes, file bytes)
    coding: str | None = None  # token codecs: the .clab coding ("range" or "bits")

    @property
    def label(self) -> str:
        return self.choice.text if self.n_q is None else f"{self.choice.series()}:{self.n_q}"


def bootstrap_ci(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of `values` (resampling items; seeded)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan
    if data.size == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def aggregate(measured: Measured, items: int) -> dict[str, Any]:
    """One results row: bitrates (nominal; the payload and container bits over the total seconds: for
    token codecs of the `.clab` files `codeclab encode` writes, range coded with the codec's entropy model
    when it ships one, with `entropy_kbps` the in-sample entropy of the codes, a bound no shipped model
    reaches; for round-trip codecs of their own packets and container) and, per metric, the mean over every item it
    applies to (a failed item at the metric's worst score, never left out), its 95 % bootstrap interval,
    and how many items were scored, failed and skipped."""
    codec, n_q = measured.codec, measured.n_q
    row: dict[str, Any] = {
        "codec": measured.choice.text,
        "series": measured.choice.series(),
        "label": measured.label,
        "n_q": n_q,
        "items": items,
        "seconds": measured.seconds,
    }
    if isinstance(codec, RoundTripCodec):
        row["nominal_kbps"] = codec.bitrate() / 1000
        seconds = max(measured.seconds, 1e-9)
        row["bitrate_kbps"] = measured.payload_bytes * 8 / seconds / 1000
        row["container_kbps"] = measured.container_bytes * 8 / seconds / 1000
    else:
        row["nominal_kbps"] = codec.bitrate(n_q) / 1000
        seconds = max(measured.seconds, 1e-9)
        row["coding"] = measured.coding
        row["bitrate_kbps"] = measured.payload_bytes * 8 / seconds / 1000
        row["container_kbps"] = measured.container_bytes * 8 / seconds / 1000
        if measured.codes:
            stats = M.codebook_statistics(measured.codes, codec.codebook_size, codec.frame_rate)
            row["entropy_kbps"] = stats["entropy_bitrate"] / 1000
            row["codebooks"] = stats["per_codebook"]
    names = list(measured.scores) + [m for m in measured.skipped if m not in measured.scores]
    for key in names:
        values = measured.scores.get(key, [])
        row[key] = float(np.mean(values)) if values else math.nan
        if not key.endswith("_reference"):
            row[f"{key}_ci95"] = list(bootstrap_ci(values))
            row[f"{key}_failed"] = measured.failed.get(key, 0)
            row[f"{key}_scored"] = len(values) - row[f"{key}_failed"]
            row[f"{key}_skipped"] = measured.skipped.get(key, 0)
    return row


def floor_failed_scores(settings: list[Measured]) -> None:
    """Score every failed item no better than the worst scored item of any setting, metric by metric: a
    metric's nominal worst (WER 1.0, 1200 cents) can be better than what garbled outputs score (WER 2.3),
    and a codec must never gain by failing. Rewrites the failed items' values in place."""
    worst: dict[str, float] = {}
    for measured in settings:
        for row in measured.items:
            for key, value in row.items():
                if (
                    key in M.SPECS
                    and key not in row["failed"]
                    and isinstance(value, float)
                    and math.isfinite(value)
                ):
                    pick = min if M.SPECS[key].higher_is_better else max
                    worst[key] = pick(worst.get(key, value), value)
    for measured in settings:
        for row in measured.items:
            for key in row["failed"]:
                if key in worst and key in row:
                    pick = min if M.SPECS[key].higher_is_better else max
                    row[key] = pick(row[key], worst[key])
        measured.scores = {}
        for row in measured.items:
            for key, value in row.items():
                if key in M.SPECS or key.endswith("_reference"):
                    measured.scores.setdefault(key, []).append(value)


def original_row(measured: Measured, items: int) -> dict[str, Any]:
    """The original audio's own row: its scores on the metrics that are not distances to it (DNSMOS of
    the original, WER of the original against the transcript), from the reference-side figures computed
    once per item; distances to itself are left empty (n/a)."""
    row: dict[str, Any] = {
        "codec": "original",
        "series": "original",
        "label": "original",
        "reference": True,
        "n_q": None,
        "items": items,
        "seconds": measured.seconds,
    }
    for metric in M.REFERENCE_FREE:
        values = [r[f"{metric}_reference"] for r in measured.items if f"{metric}_reference" in r]
        values = [v for v in values if isinstance(v, float) and math.isfinite(v)]
        if not values:
            continue
        row[metric] = float(np.mean(values))
        row[f"{metric}_ci95"] = list(bootstrap_ci(values))
        row[f"{metric}_scored"], row[f"{metric}_failed"] = len(values), 0
        row[f"{metric}_skipped"] = sum(1 for r in measured.items if metric in r["skipped"])
    return row


def summary_cell(row: dict[str, Any], metric: str) -> str:
    """ "mean [low, high]" for the Markdown table, with the items failed or skipped when there are any."""
    mean, ci = row.get(metric), row.get(f"{metric}_ci95")
    if not isinstance(mean, float) or math.isnan(mean):
        return "n/a"
    text = f"{mean:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and not math.isnan(ci[0]) else "")
    extra = [
        f"{row[k]} {word}"
        for k, word in ((f"{metric}_failed", "failed"), (f"{metric}_skipped", "skipped"))
        if row.get(k)
    ]
    return text + (f" ({', '.join(extra)})" if extra else "")


PLOT_RATES = {"coded": "bitrate_kbps", "nominal": "nominal_kbps"}  # the x axis of the quality plots


def write_report(
    out: Path,
    report: dict[str, Any],
    usable: list[str],
    status: dict[str, str | None],
    eval_rate: int,
    items: list[dict[str, Any]] | None = None,
    plot_rate: str = "coded",
) -> dict[str, Any]:
    """results.json, results.csv, results.md, items.jsonl (every item of every setting) and plots/ under
    `out` (quality against the coded rate, or the nominal one with `plot_rate="nominal"`); returns the
    report with its plots."""
    if plot_rate not in PLOT_RATES:
        raise ValueError(f"plot rate must be one of {sorted(PLOT_RATES)}, got {plot_rate!r}")
    rows, flags = report["results"], report["flags"]
    write_json(report, out / "results.json")
    if items is not None:
        write_jsonl(items, out / "items.jsonl")
    shown = [m for m in usable if any(isinstance(r.get(m), float) for r in rows)]
    bitrates = ["nominal_kbps", "bitrate_kbps", "entropy_kbps", "container_kbps"]
    columns = ["label", *bitrates]
    for m in shown:
        columns += [m, f"{m}_ci95", f"{m}_scored", f"{m}_failed", f"{m}_skipped"]
    columns += [m for m in ("dnsmos_reference", "wer_reference") if any(m in r for r in rows)]
    md_rows = [{**row, **{m: summary_cell(row, m) for m in shown}} for row in rows]
    md_columns = ["label", *bitrates, *shown]
    notes = [
        f"{m}: {M.SPECS[m].description} ({'higher' if M.SPECS[m].higher_is_better else 'lower'} is better; "
        f"at {M.SPECS[m].rate or eval_rate} Hz)"
        for m in shown
    ]
    notes.append(
        "each cell: mean over the items [95 % bootstrap interval]; a failed item (NaN, silent or constant "
        "output, or one the metric cannot score) counts at the metric's worst score; a skipped item (the "
        "reference cannot be scored, or a speech metric on a non-speech item) is named in items.jsonl"
    )
    notes.append(
        "bitrate_kbps: payload bits over total seconds: for token codecs the codes of the .clab files "
        "`codeclab encode` writes (range coded with the codec's shipped entropy model when it has one: "
        "column coding), for Opus and Codec 2 their packets; container_kbps: whole files (.clab with its "
        "header and packet framing; Ogg or raw Codec 2); entropy_kbps: the in-sample entropy of the codes, "
        "a bound that no model fitted elsewhere reaches"
    )
    notes += [f"skipped {m}: {r}" for m, r in status.items() if r]
    notes += [f"WARNING: {flag}" for flag in flags]
    notes.append(
        f"provenance: {report['provenance']['command']}; codeclab {report['provenance']['codeclab_version']}; "
        f"data sha256 {report['provenance']['data']['sha256'][:16]}; {report['provenance']['machine']}"
    )
    write_table(
        rows,
        columns,
        out / "results",
        "Reconstruction benchmark",
        notes,
        md_columns=md_columns,
        md_rows=md_rows,
    )
    x = PLOT_RATES[plot_rate]
    labels = {x: f"{plot_rate} bitrate (kbps)", **{m: M.SPECS[m].description for m in shown}}
    better = {m: M.SPECS[m].higher_is_better for m in shown}
    report["plots"] = (
        [str(p) for p in plot_curves(rows, shown, x, "series", out / "plots", labels, better)] if rows else []
    )
    return report
