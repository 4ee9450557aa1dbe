"""A self-contained listening page for a reconstruction benchmark (`codeclab bench recon --html`).

One HTML file, nothing beside it to lose:
- the results as tables that fit a laptop screen (bitrates in one, at most `METRICS_PER_TABLE` metrics in
  each of the others; each cell the mean with its 95 % interval under it), sortable by any column (click
  its header), the best setting of each column marked, the original audio's own row first;
- the plots (PNG as data URIs);
- for each chosen item, one row per version (the original, then each codec setting): the label with the
  setting's coded kbps, a player at the codec's own rate and one at the evaluation rate (the audio that
  was scored), a spectrogram, and the item's own scores (failed ones marked).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from codeclab.eval.report import format_cell

LISTEN_SECONDS = 6.0
METRICS_PER_TABLE = 6

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[data-dir="asc"]::after { content: " \\25B2"; } th[data-dir="desc"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.num small { color: #666; display: block; font-size: 0.8em; }
td.best { background: #e7f5e4; font-weight: 600; }
td.best::before { content: "\\2605 "; color: #2a7a1f; }
tr.original td { background: #f7f7fb; font-style: italic; }
.plots img { max-width: 48%; margin: 0.5%; border: 1px solid #eee; }
.listen td { vertical-align: middle; }
.listen audio { width: 210px; }
.listen img { display: block; height: 72px; width: 300px; }
.scores { font-size: 0.8em; color: #333; }
.failed { color: #b00; }
.note { color: #555; font-size: 0.85em; }
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(table => {
  table.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
    const body = table.tBodies[0];
    const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
    table.querySelectorAll('th').forEach(h => delete h.dataset.dir);
    th.dataset.dir = dir;
    const key = row => {
      const cell = row.cells[col];
      const value = parseFloat(cell.dataset.value);
      return isNaN(value) ? cell.textContent : value;
    };
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      const order = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
      return dir === 'asc' ? order : -order;
    });
    rows.forEach(row => body.appendChild(row));
  }));
});
"""


def wav_data_uri(audio: np.ndarray, sample_rate: int, seconds: float = LISTEN_SECONDS) -> str:
    """Mono float audio [T] -> a data URI of its first `seconds` as 16-bit PCM WAV (peak-safe clip)."""
    import soundfile as sf

    clip = np.nan_to_num(np.asarray(audio, dtype=np.float32)[: int(seconds * sample_rate)])
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(clip, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def spectrogram_uri(audio: np.ndarray, sample_rate: int, seconds: float = LISTEN_SECONDS) -> str:
    """A log-magnitude spectrogram (25 ms Hann windows, 10 ms hop, 80 dB range) of the first `seconds`
    as a PNG data URI, low frequencies at the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.nan_to_num(np.asarray(audio, dtype=np.float32)[: int(seconds * sample_rate)])
    n_fft, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2
    db = 10 * np.log10(power + 1e-10)
    db = np.clip(db, db.max() - 80, None)
    buffer = io.BytesIO()
    plt.imsave(buffer, db[::-1], cmap="magma", format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _best(rows: list[dict[str, Any]], column: str, higher: bool | None) -> float | None:
    values = [
        r[column]
        for r in rows
        if not r.get("reference") and isinstance(r.get(column), float) and math.isfinite(r[column])
    ]
    if not values or higher is None or len(values) < 2:
        return None
    return max(values) if higher else min(values)


def _metric_cell(row: dict[str, Any], metric: str, best: float | None) -> str:
    mean, ci = row.get(metric), row.get(f"{metric}_ci95")
    if not isinstance(mean, float) or math.isnan(mean):
        return '<td class="num" data-value="">n/a</td>'
    interval = f"<small>[{ci[0]:.3f}, {ci[1]:.3f}]</small>" if ci and not math.isnan(ci[0]) else ""
    failed = row.get(f"{metric}_failed") or 0
    marks = f' <span class="failed">({failed} failed)</span>' if failed else ""
    css = "num best" if best is not None and mean == best and not row.get("reference") else "num"
    return f'<td class="{css}" data-value="{mean!r}">{mean:.3f}{marks}{interval}</td>'


def results_tables(rows: list[dict[str, Any]], metrics: list[str], higher: dict[str, bool]) -> str:
    """The results as sortable tables: bitrates, then metrics in groups of METRICS_PER_TABLE."""
    bitrates = [
        c
        for c in ("nominal_kbps", "bitrate_kbps", "entropy_kbps", "container_kbps")
        if any(c in r for r in rows)
    ]
    groups = [("bitrates", bitrates)] + [
        (f"quality {n + 1}", metrics[i : i + METRICS_PER_TABLE])
        for n, i in enumerate(range(0, len(metrics), METRICS_PER_TABLE))
    ]
    tables = []
    for n, (name, columns) in enumerate(groups):
        head = "<th>codec</th>" + "".join(
            f'<th title="{html.escape(c)}">{html.escape(c)}</th>' for c in columns
        )
        body = []
        for row in rows:
            css = ' class="original"' if row.get("reference") else ""
            cells = [f"<td>{html.escape(row['label'])}</td>"]
            for column in columns:
                if name == "bitrates":
                    value = row.get(column)
                    data = repr(value) if isinstance(value, float) and math.isfinite(value) else ""
                    cells.append(f'<td class="num" data-value="{data}">{format_cell(value)}</td>')
                else:
                    cells.append(_metric_cell(row, column, _best(rows, column, higher.get(column))))
            body.append(f"<tr{css}>" + "".join(cells) + "</tr>")
        table_id = "results" if n == 0 else f"results-{n}"
        tables.append(
            f'<h3>{html.escape(name)}</h3><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    return "".join(tables)


def _scores_text(player) -> str:
    parts = []
    for metric, value in player.scores.items():
        css = ' class="failed"' if metric in player.failed else ""
        parts.append(f"<span{css}>{html.escape(metric)} {html.escape(format_cell(value))}</span>")
    return " &middot; ".join(parts)


def listening_section(items, sample_rate: int) -> str:
    out = []
    for item in items:
        rows = []
        for player in item.players:
            kbps = (
                f"{player.kbps:.2f} kbps"
                if isinstance(player.kbps, float) and math.isfinite(player.kbps)
                else "source audio"
            )
            label = (
                f'<span class="label">{html.escape(player.label)}</span><br><span class="kbps">{kbps}</span>'
            )
            native = (
                f'<audio controls preload="none" src="{wav_data_uri(player.native, player.native_rate)}"></audio>'
                f'<br><span class="note">{player.native_rate} Hz</span>'
            )
            scored = (
                f'<audio controls preload="none" src="{wav_data_uri(player.at_eval, sample_rate)}"></audio>'
                f'<br><span class="note">{sample_rate} Hz, as scored</span>'
            )
            image = f'<img alt="spectrogram of {html.escape(player.label)}" src="{spectrogram_uri(player.at_eval, sample_rate)}">'
            rows.append(
                f'<tr data-kbps="{html.escape(kbps)}"><td>{label}</td><td>{native}</td><td>{scored}</td>'
                f'<td>{image}</td><td class="scores">{_scores_text(player)}</td></tr>'
            )
        head = "<tr><th>version</th><th>own rate</th><th>evaluation rate</th><th>spectrogram</th><th>this item's scores</th></tr>"
        out.append(
            f'<h3>{html.escape(item.id)}</h3><table class="listen"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
        )
    return "".join(out)


def write_html_report(
    path: Path,
    report: dict[str, Any],
    metrics: list[str],
    items: list,
    sample_rate: int,
    descriptions: dict[str, str],
    listen: str = "first",
) -> Path:
    """Write the page to `path`. items: `codeclab.eval.listen.ListenItem`s (the players of each chosen
    item); `listen` says how they were chosen."""
    rows = report["results"]
    higher = {m: info["higher_is_better"] for m, info in report.get("metrics", {}).items()}
    notes = "".join(f"<li>{html.escape(m)}: {html.escape(descriptions.get(m, ''))}</li>" for m in metrics)
    plots = "".join(
        f'<img alt="{html.escape(Path(p).stem)}" src="{png_data_uri(Path(p))}">'
        for p in report.get("plots", [])
        if Path(p).name != "all.png"
    )
    provenance = report.get("provenance", {})
    how = {
        "first": "the first items",
        "worst": "the items with the worst headline score over every setting",
        "random": "items drawn at random (seed 0)",
    }
    chosen = how.get(listen, f"the items named: {listen}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>codeclab reconstruction benchmark</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<h1>Reconstruction benchmark</h1>
<p class="note">{html.escape(str(provenance.get("command", "")))}<br>codeclab {html.escape(str(provenance.get("codeclab_version", "")))};
{html.escape(str(provenance.get("machine", "")))}; data sha256 {html.escape(str(provenance.get("data", {}).get("sha256", ""))[:16])};
{html.escape(str(provenance.get("data", {}).get("items", "")))} items</p>
<h2>Results</h2>
{results_tables(rows, metrics, higher)}
<p class="note">Each cell: mean over the items with its 95 % bootstrap interval below; a failed item counts no
better than the worst scored item and is marked. &#9733;: the best setting of the column (the original's row,
in italics, shows the scores of the original audio itself where they are not distances to it). Click a
header to sort. Per-item results are in items.jsonl beside this page.</p>
<ul class="note">{notes}</ul>
<h2>Quality against bitrate</h2><div class="plots">{plots}</div>
<h2>Listen</h2><p class="note">{html.escape(chosen)}; the first {LISTEN_SECONDS:g} s of each version, at its own
rate and at the {sample_rate} Hz it was scored at.</p>
{listening_section(items, sample_rate)}
<script>{SORT_SCRIPT}</script>
</body></html>
"""
    path.write_text(page)
    return path
