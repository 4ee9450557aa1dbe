"""A self-contained listening page for a reconstruction benchmark (`codeclab bench recon --html`).

One HTML file, nothing beside it to lose: the summary table with its 95 % intervals, the plots (PNG as
data URIs) and, for a few items, an audio player per codec setting beside the original (16-bit WAV as
data URIs, the first `LISTEN_SECONDS` of each item at the evaluation rate). The kind of demo page codec
papers publish, written by the benchmark that measured the numbers on it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

LISTEN_SECONDS = 6.0

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots img { max-width: 48%; margin: 0.5%; border: 1px solid #eee; }
.listen td { vertical-align: middle; }
.failed { color: #b00; }
.note { color: #555; font-size: 0.85em; }
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


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def write_html_report(
    path: Path,
    report: dict[str, Any],
    metrics: list[str],
    summaries: dict[str, dict[str, str]],
    listen: dict[str, dict[str, np.ndarray]],
    references: dict[str, np.ndarray],
    sample_rate: int,
    descriptions: dict[str, str],
) -> Path:
    """Write the page to `path`. summaries: label -> metric -> "mean [low, high] (k failed)";
    listen: item id -> label -> output audio [T]; references: item id -> original audio [T]."""
    rows = report["results"]
    bitrates = [
        c
        for c in ("nominal_kbps", "bitrate_kbps", "entropy_kbps", "container_kbps")
        if any(c in r for r in rows)
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["codec", *bitrates, *metrics])
    body = []
    for row in rows:
        cells = [f"<td>{html.escape(row['label'])}</td>"]
        cells += [f'<td class="num">{_cell(row.get(c, ""))}</td>' for c in bitrates]
        for m in metrics:
            text = summaries.get(row["label"], {}).get(m, "n/a")
            css = "num failed" if "failed" in text else "num"
            cells.append(f'<td class="{css}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<li>{html.escape(m)}: {html.escape(descriptions.get(m, ''))}</li>" for m in metrics)
    plots = "".join(
        f'<img alt="{html.escape(Path(p).stem)}" src="{png_data_uri(Path(p))}">'
        for p in report.get("plots", [])
        if Path(p).name != "all.png"
    )
    labels = [row["label"] for row in rows]
    listening = []
    for item_id, outputs in listen.items():
        players = [
            f'<tr><td>original</td><td><audio controls preload="none" src="{wav_data_uri(references[item_id], sample_rate)}"></audio></td></tr>'
        ]
        for label in labels:
            if label in outputs:
                uri = wav_data_uri(outputs[label], sample_rate)
                players.append(
                    f'<tr><td>{html.escape(label)}</td><td><audio controls preload="none" src="{uri}"></audio></td></tr>'
                )
        listening.append(f'<h3>{html.escape(item_id)}</h3><table class="listen">{"".join(players)}</table>')
    provenance = report.get("provenance", {})
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>codeclab reconstruction benchmark</title>
<style>{STYLE}</style></head><body>
<h1>Reconstruction benchmark</h1>
<p class="note">{html.escape(str(provenance.get("command", "")))}<br>codeclab {html.escape(str(provenance.get("codeclab_version", "")))};
{html.escape(str(provenance.get("machine", "")))}; data sha256 {html.escape(str(provenance.get("data", {}).get("sha256", ""))[:16])};
{html.escape(str(provenance.get("data", {}).get("items", "")))} items</p>
<h2>Results</h2>
<table id="results"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<p class="note">Each cell: mean over the items [95 % bootstrap interval]; failed items count at the metric's worst
score and are marked; per-item results are in items.jsonl beside this page.</p>
<ul class="note">{notes}</ul>
<h2>Quality against bitrate</h2><div class="plots">{plots}</div>
<h2>Listen</h2><p class="note">The first {LISTEN_SECONDS:g} s of each item at {sample_rate} Hz, as scored.</p>
{"".join(listening)}
</body></html>
"""
    path.write_text(page)
    return path
