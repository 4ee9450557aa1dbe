"""`codeclab bench suite`: every benchmark for a list of codecs on one speech set, and one leaderboard.

    run_suite(["codeclab-16k-speech:1+8", "opus:bitrate=6000"], ["speech/heldout.jsonl"], "bench/suite",
              teacher="teacher")

runs, under OUT:
- recon/  `bench recon --html` over every codec (quality against bitrate, the listening page);
- tokens/ each token codec's store of the speech set (at its largest n_q), for:
- lm/     `bench lm` (flatten) with its unigram and bigram baselines, at each n_q of the recon rows (so a
          row's LM figure is its own codebooks', never the largest setting's), one folder per codec;
- probe/  `bench probe --labels teacher:DIR` when a phone teacher is given (real speech has no
          alignments), else skipped with that reason;
- speed/  `bench speed` of each token codec;
and writes leaderboard.json, leaderboard.md and index.html: one row per codec setting with its bitrate,
the headline quality metrics (mean [95 % interval]), the token LM's bits per second against the better
n-gram, the probe's codebook-1 information, and encode/decode speed, linking each sub-report, the way
Codec-SUPERB and DASB present results.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from codeclab.catalog.ref import CodecRef
from codeclab.codecs.roundtrip import RoundTripCodec
from codeclab.eval.lm_bench import LMBenchConfig, run_lm_bench
from codeclab.eval.probe import run_probe
from codeclab.eval.recon import run_recon, summary_cell
from codeclab.eval.report import format_cell, provenance, write_json, write_table
from codeclab.eval.speed import measure_speed
from codeclab.tokens.store_paths import StoreLayout

HEADLINE = ("stoi", "pesq_wb", "mel_distance", "speaker_sim", "dnsmos", "wer")
MIN_HELD_OUT_ITEMS = 20  # an LM figure over fewer held-out items is flagged as meaningless


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "codec"


def run_suite(
    codecs: list[str],
    data: list[str],
    out: str | Path,
    teacher: str | Path | None = None,
    metrics: list[str] | None = None,
    max_items: int | None = None,
    lm_steps: int = 400,
    random_init: bool = False,
    command: list[str] | None = None,
    log=print,
) -> dict[str, Any]:
    """Run recon, tokenize + lm + probe, and speed; write the leaderboard (see the module docstring)."""
    from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recon = run_recon(
        codecs, data, out / "recon", metrics, max_items=max_items, random_init=random_init, log=log, html=True
    )
    stores: dict[str, str] = {}
    speeds: dict[str, dict[str, Any]] = {}
    for text in codecs:
        ref = CodecRef.parse(text, random_init)
        codec = ref.load(roundtrip=True)
        if isinstance(codec, RoundTripCodec):
            continue  # no tokens: recon only
        store = out / "tokens" / _slug(ref.series())
        if not StoreLayout(store).is_store():
            tokenize_corpus(TokenizeOptions(inputs=list(data), out=store, codec=ref.spec(), workers=0))
        stores[text] = str(store)
        speeds[text] = measure_speed(codec, seconds=5.0, batch=1, reps=2).to_dict()
    lm_rows: list[dict[str, Any]] = []
    for text, store in stores.items():
        n_qs = sorted({r["n_q"] for r in recon["results"] if r["codec"] == text and r.get("n_q")})
        lm_report = run_lm_bench(
            [store],
            out / "lm" / _slug(Path(store).name),
            ("flatten",),
            LMBenchConfig(steps=lm_steps),
            log=log,
            n_qs=n_qs,
        )
        lm_rows += lm_report["results"]
    lm = {"results": lm_rows} if lm_rows else None
    probe, probe_note = None, "skipped: no --teacher given (real speech has no phone alignments)"
    if stores and teacher is not None:
        probe = run_probe(list(stores.values()), None, out / "probe", log=log, labels=f"teacher:{teacher}")
        probe_note = f"labels: the phone teacher {teacher} (its most probable phone per frame)"
    write_json({"provenance": provenance(command), "speed": speeds}, out / "speed.json")
    board = leaderboard(recon, lm, probe, stores, speeds)
    warnings = small_split_warnings(lm_rows)
    for warning in warnings:
        log(f"warning: {warning}")
    report = {
        "provenance": provenance(
            command, codecs=codecs, data=data, teacher=str(teacher) if teacher else None
        ),
        "probe": probe_note,
        "weights": weights_note(recon),
        "warnings": warnings,
        "rows": board,
    }
    write_leaderboard(out, report)
    return report


def weights_note(recon: dict[str, Any]) -> str:
    """The leaderboard's note on random-init codecs ("" when every codec had weights)."""
    untrained = sorted(random_init_codecs(recon))
    if not untrained:
        return ""
    return (
        f"random init ({', '.join(untrained)}): quality is not scored here (recon/ has the raw figures); "
        "speed, bits/s and the token LM still compare"
    )


def write_leaderboard(out: Path, report: dict[str, Any]) -> None:
    """leaderboard.json, leaderboard.md/.csv (the table and its notes) and index.html under `out`."""
    write_json(report, out / "leaderboard.json")
    board = report["rows"]
    columns = [
        "codec",
        *(["weights"] if any("weights" in r for r in board) else []),
        "kbps",
        *[m for m in HEADLINE if any(m in r for r in board)],
        "lm_bits_per_second",
        "lm_vs_ngram",
        "lm_held_out_items",
        "probe_codebook1",
        "encode_xrt",
        "decode_xrt",
    ]
    notes = [
        report["probe"],
        *([report["weights"]] if report["weights"] else []),
        *(f"WARNING: {w}" for w in report["warnings"]),
    ]
    write_table(board, columns, out / "leaderboard", "Leaderboard", notes)
    write_index(out / "index.html", report, columns)


def small_split_warnings(lm_rows: list[dict[str, Any]]) -> list[str]:
    """A warning for each LM figure scored on fewer than MIN_HELD_OUT_ITEMS held-out items."""
    small = sorted(
        {
            (r["store"], r.get("held_out_items", 0))
            for r in lm_rows
            if r.get("held_out_items", 0) < MIN_HELD_OUT_ITEMS
        }
    )
    return [
        f"{store}: the LM is scored on {held} held-out item(s); fewer than {MIN_HELD_OUT_ITEMS} make its bits per "
        "second noise (give the suite more items)"
        for store, held in small
    ]


def leaderboard(recon, lm, probe, stores: dict[str, str], speeds: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per codec setting of the recon run (and the original audio's), joined with its codec's
    LM at the row's own n_q, probe and speed."""
    by_setting = {
        (r["store"], r["n_q"]): r for r in (lm or {}).get("results", []) if r["pattern"] == "flatten"
    }
    probes = {r["store"]: r for r in (probe or {}).get("results", [])}
    untrained = random_init_codecs(recon)
    rows = []
    for row in recon["results"]:
        entry: dict[str, Any] = {"codec": row["label"], "kbps": row.get("bitrate_kbps")}
        if row["codec"] in untrained:
            entry["weights"] = "random init"  # its audio says nothing of the model: no quality cells
        for m in HEADLINE:
            if m in row and row["codec"] not in untrained:
                entry[m] = summary_cell(row, m)
        store = stores.get(row["codec"])
        if store is not None:
            lm_row = by_setting.get((store, row.get("n_q")), {})
            entry["lm_bits_per_second"] = lm_row.get("bits_per_second")
            entry["lm_vs_ngram"] = lm_row.get("vs_ngram_bits_per_second")
            entry["lm_held_out_items"] = lm_row.get("held_out_items")
            information = probes.get(store, {}).get("per_codebook_information")
            entry["probe_codebook1"] = information[0] if information else None
            entry["encode_xrt"] = speeds[row["codec"]]["encode_xrt"]
            entry["decode_xrt"] = speeds[row["codec"]]["decode_xrt"]
        rows.append(entry)
    return rows


def random_init_codecs(recon: dict[str, Any]) -> set[str]:
    """Names of the recon run's codecs that had random weights (from its provenance)."""
    codecs = recon.get("provenance", {}).get("codecs", {})
    return {name for name, facts in codecs.items() if isinstance(facts, dict) and facts.get("random_init")}


def write_index(path: Path, report: dict[str, Any], columns: list[str]) -> Path:
    """The leaderboard page: the table, what each column means, and links to every sub-report."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(row.get(c), '-'))}</td>" for c in columns) + "</tr>"
        for row in report["rows"]
    )
    links = [
        ("recon/report.html", "reconstruction: table, plots, listening page"),
        ("recon/items.jsonl", "every item's scores"),
        *(
            (f"lm/{d.name}/lm.md", f"token LM with n-gram baselines: {d.name}")
            for d in sorted((path.parent / "lm").glob("*"))
        ),
        ("probe/probe.md", "phone probe"),
        ("speed.json", "speed"),
    ]
    items = "".join(
        f'<li><a href="{href}">{html.escape(text)}</a></li>'
        for href, text in links
        if (path.parent / href).exists()
    )
    warnings = "".join(
        f'<p class="warning">WARNING: {html.escape(w)}</p>' for w in report.get("warnings", [])
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>codeclab leaderboard</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
th {{ background: #f3f3f3; }} .note {{ color: #555; font-size: 0.85em; }} .warning {{ color: #a40; }}</style></head><body>
<h1>Leaderboard</h1>
<p class="note">{html.escape(str(report["provenance"].get("command", "")))}; {html.escape(str(report["provenance"].get("machine", "")))}</p>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p class="note">Quality: mean [95 % bootstrap interval] over the items (failed items at the worst score).
lm_bits_per_second: the token LM's held-out bits per second of audio (lower: more predictable tokens);
lm_vs_ngram: minus the better n-gram baseline's (below 0: the LM beats code statistics).
probe_codebook1: held-out phone information of codebook 1 (share of the phone entropy). {html.escape(report["probe"])}.
encode_xrt / decode_xrt: times faster than real time on this machine. {html.escape(report.get("weights", ""))}</p>
{warnings}<h2>Reports</h2><ul>{items}</ul>
</body></html>
"""
    path.write_text(page)
    return path
