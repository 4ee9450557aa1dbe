"""What every report records so a result can be reproduced and compared: command, version, machine, codec
weights and data fingerprints; plus writers for JSON, CSV, Markdown tables and quality-versus-bitrate plots."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shlex
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from codeclab._files import atomic_write_json, atomic_write_text, sha256_file
from codeclab._version import __version__
from codeclab.codecs.roundtrip import RoundTripCodec
from codeclab.corpora.manifest import AudioItem
from codeclab.eval.machine import describe_machine


def data_fingerprint(items: list[AudioItem]) -> str:
    """sha256 over the items evaluated: id, segment and the sha256 of each file's bytes."""
    digest = hashlib.sha256()
    file_hashes: dict[str, str] = {}
    for item in sorted(items, key=lambda it: it.id):
        if item.path not in file_hashes:
            file_hashes[item.path] = sha256_file(item.path)
        digest.update(f"{item.id}\t{item.start}\t{item.end}\t{file_hashes[item.path]}\n".encode())
    return digest.hexdigest()


def codec_fingerprint(codec) -> dict[str, Any]:
    """A report's record of a codec: `codec_facts` for token codecs, `describe()` for round-trip ones."""
    if isinstance(codec, RoundTripCodec):  # no weights
        return {"name": codec.name, "family": "classic", **codec.describe()}
    from codeclab.catalog.fingerprint import codec_facts

    return codec_facts(codec)


def format_cell(value: Any, missing: str = "") -> str:
    """A table cell: floats to 3 decimals (thousands separated from 100 up), NaN as n/a, None as
    `missing`."""
    if value is None:
        return missing
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def portable_command(argv: list[str]) -> str:
    """A command line as a report records it: the program by its name (`codeclab`, not
    /home/.../.venv/bin/codeclab) and absolute paths relative to the working directory, so a report
    names no machine's directories and its command reruns from the same place elsewhere."""
    import os

    words = []
    for n, word in enumerate(argv):
        if n == 0:
            word = os.path.basename(word)
        elif os.path.isabs(word):
            word = os.path.relpath(word)
        words.append(shlex.quote(word))
    return " ".join(words)


def provenance(command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "command": portable_command(list(command if command is not None else sys.argv)),
        "codeclab_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": describe_machine(),
        **extra,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_table(
    rows: list[dict[str, Any]],
    columns: list[str],
    out: Path,
    title: str,
    notes: list[str] | None = None,
    md_columns: list[str] | None = None,
    md_rows: list[dict[str, Any]] | None = None,
) -> None:
    """rows as CSV (out.csv, `columns`) and a Markdown table (out.md: `md_columns` of `md_rows`, or the
    same columns and rows)."""
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    md_columns = md_columns or columns
    lines = [f"# {title}", ""]
    lines.append("| " + " | ".join(md_columns) + " |")
    lines.append("|" + "---|" * len(md_columns))
    for row in md_rows if md_rows is not None else rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in md_columns) + " |")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    """One JSON object per line (NaN and inf written as null)."""
    atomic_write_text(path, "".join(json.dumps(_clean(row)) + "\n" for row in rows))


def _clean(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def write_json(data: dict[str, Any], path: Path) -> None:
    """`data` as indented JSON (NaN and inf written as null)."""
    atomic_write_json(path, _clean(data))


def _bitrate_ticks(values: list[float]) -> list[float]:
    """Ticks of a log bitrate axis: every decade (and its 2 and 5) within the data's range, and every
    tested bitrate."""
    low, high = min(values), max(values)
    ticks = set(values)
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            tick = mantissa * 10.0**exponent
            if low / 1.5 <= tick <= high * 1.5:
                ticks.add(tick)
    return sorted(ticks)


def finite(row: dict[str, Any], metric: str) -> bool:
    """True when `row` holds a finite float score for `metric`."""
    return isinstance(row.get(metric), float) and not math.isnan(row[metric])


def _draw_metric(
    target: Any,
    rows: list[dict[str, Any]],
    originals: list[dict[str, Any]],
    group: str,
    groups: list[str],
    metric: str,
    x: str,
    xlabel: str,
    ylabel: str,
    ticks: list[float],
    log_x: bool,
) -> None:
    """One metric's curves on the matplotlib axes `target`: a line per group, failed points ringed in
    red, the original audio's score as a dashed line."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for g in groups:
        points = sorted(
            (r[x], r[metric], r.get(f"{metric}_failed", 0))
            for r in rows
            if r[group] == g and finite(r, metric)
        )
        if not points:
            continue
        target.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=g)
        for px, py, failed in points:
            if failed:
                target.scatter(
                    [px], [py], s=140, facecolors="none", edgecolors="red", linewidths=1.5, zorder=5
                )
                target.annotate(
                    f"{failed} failed",
                    (px, py),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=7,
                    color="red",
                )
    for original in originals:
        if finite(original, metric):
            target.axhline(original[metric], linestyle="--", color="0.4", label=f"{original[group]} audio")
    target.set_xlabel(xlabel)
    target.set_ylabel(ylabel, fontsize=8)
    if log_x:
        target.set_xscale("log")
    if ticks and log_x:
        target.xaxis.set_major_locator(FixedLocator(ticks))
        target.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        target.xaxis.set_minor_locator(NullLocator())
        target.tick_params(axis="x", labelsize=7, labelrotation=45)
    target.grid(True, alpha=0.3)


def plot_curves(
    rows: list[dict[str, Any]],
    metrics: list[str],
    x: str,
    group: str,
    out_dir: Path,
    labels: dict[str, str],
    higher_is_better: dict[str, bool] | None = None,
    log_x: bool = True,
) -> list[Path]:
    """One PNG per metric: metric against `x` (bitrate, log axis ticked at every decade and every
    tested bitrate; a linear axis with `log_x=False`), one line per `group` (codec, its full name in the legend); plus all.png. The y label
    says which direction is better; a point with failed items is ringed in red and labelled with their
    count; a codec with no score for a metric is listed under the plot, not silently dropped."""
    from codeclab.eval.optional import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    better = higher_is_better or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    originals = [r for r in rows if r.get("reference")]  # the original audio's row: a dashed line
    rows = [r for r in rows if not r.get("reference")]
    groups = sorted({r[group] for r in rows})

    shown = [m for m in metrics if any(finite(r, m) for r in rows)]
    xs = [r[x] for r in rows if isinstance(r.get(x), float | int) and r[x] > 0]
    ticks = _bitrate_ticks(xs) if xs else []
    cols = min(3, max(1, len(shown)))
    grid_rows = max(1, math.ceil(len(shown) / cols))
    fig_all, axes = plt.subplots(grid_rows, cols, figsize=(5.5 * cols, 4 * grid_rows), squeeze=False)
    for i, metric in enumerate(shown):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        better_up = better.get(metric)
        direction = (
            None
            if better_up is None
            else ("higher is better \u2191" if better_up else "lower is better \u2193")
        )
        ylabel = textwrap.fill(labels.get(metric, metric), 42) + (f"\n({direction})" if direction else "")
        missing = [g for g in groups if not any(r[group] == g and finite(r, metric) for r in rows)]
        for target in (ax, axes[i // cols][i % cols]):
            _draw_metric(
                target, rows, originals, group, groups, metric, x, labels.get(x, x), ylabel, ticks, log_x
            )
        ax.legend(fontsize=7, loc="best")
        title = metric
        if missing:
            title += f"\nno score: {', '.join(missing)}"
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    for j in range(len(shown), grid_rows * cols):
        axes[j // cols][j % cols].axis("off")
    if shown:
        axes[0][0].legend(fontsize=7)
        fig_all.tight_layout()
        path = out_dir / "all.png"
        fig_all.savefig(path, dpi=90)
        written.append(path)
    plt.close(fig_all)
    return written
