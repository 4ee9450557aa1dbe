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

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codeclab._progress import progress_task
from codeclab.audio.io import load_audio, resample
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec, Encoded
from codeclab.codecs.roundtrip import RoundTripCodec
from codeclab.corpora.manifest import AudioItem, discover
from codeclab.eval import metrics as M
from codeclab.eval.recon_tables import (
    Measured,
    aggregate,
    bitrate_flags,
    bootstrap_ci,
    floor_failed_scores,
    original_row,
    summary_cell,
    write_report,
)
from codeclab.eval.report import codec_fingerprint, data_fingerprint, provenance

__all__ = [  # the tables moved to recon_tables; their names stay importable from here
    "CodecChoice",
    "Measured",
    "aggregate",
    "bitrate_flags",
    "bootstrap_ci",
    "floor_failed_scores",
    "measure",
    "original_row",
    "reconstruct",
    "run_recon",
    "summary_cell",
]

# `codeclab.catalog.ref.CodecRef` is the one codec grammar; benchmarks knew it as CodecChoice
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

        from codeclab.audio.io import audio_info

        def cut(it: AudioItem) -> AudioItem:
            end = (it.start or 0.0) + max_seconds
            if it.end is not None:
                return replace(it, end=min(it.end, end))
            try:  # an item shorter than max_seconds is used whole
                if audio_info(it.path).duration <= end:
                    return it
            except Exception:  # an unreadable file is reported by the run itself  # noqa: BLE001
                return it
            return replace(it, end=end)

        items = [cut(it) for it in items]
    return items


def reconstruct(
    codec: AudioCodec | RoundTripCodec, x: Tensor, n_q: int | None
) -> tuple[Tensor, Any, tuple[int, int] | None]:
    """x [C, T] -> (estimate [C, T'], codes [n_q, F] or None, (payload bytes, container bytes) or None)."""
    if isinstance(codec, RoundTripCodec):
        result = codec.roundtrip(x[None])
        payload = int(result.nbytes[0])
        container = payload if result.container_nbytes is None else int(result.container_nbytes[0])
        return result.audio[0], None, (payload, container)
    encoded = codec.encode(x[None], n_q=n_q)
    estimate = codec.decode(Encoded(encoded.codes, encoded.lengths, encoded.audio_lengths))[0]
    return estimate, encoded.items()[0].cpu().numpy(), None


def clab_writer(codec: AudioCodec, choice: CodecChoice, with_bytes: bool = False):
    """A function codes [n_q, F], audio length -> (payload bytes, file bytes) of the `.clab` file that
    `codeclab encode` writes for them (version 3, 100 ms packets, range coded when the codec ships an
    entropy model, else bit-packed), or the file itself `with_bytes`; and the coding used."""
    from codeclab.catalog.ref import CodecRef
    from codeclab.pipelines.clab_files import (
        DEFAULT_PACKET_MS,
        clab_header,
        packet_frames_for,
        resolve_coding,
    )
    from codeclab.tokens.clab_packets import write_packets

    coding, model = resolve_coding(codec, "auto")
    spec = CodecRef(choice.name, weights=choice.weights, random_init=choice.random_init, seed=choice.seed)
    header = clab_header(codec, spec)
    frames = packet_frames_for(codec, DEFAULT_PACKET_MS)

    def sizes(codes: np.ndarray, audio_length: int) -> tuple[int, int]:
        blob, payload = write_packets(codes, {**header, "audio_length": audio_length}, coding, model, frames)
        return blob if with_bytes else (payload, len(blob))

    return sizes, coding


NON_SPEECH_SOURCES = ("music", "samples")  # manifest sources whose items are not speech


def is_speech(item: AudioItem) -> bool:
    """Whether speech metrics apply: items from a music or sample source are not speech."""
    return not any(item.source == s or item.source.startswith(f"{s}/") for s in NON_SPEECH_SOURCES)


def measure(
    choice: CodecChoice,
    codec: AudioCodec | RoundTripCodec,
    n_q: int | None,
    items: list[AudioItem],
    references: dict[str, np.ndarray],
    reference_cache: dict[str, dict],
    metrics: list[str],
    eval_rate: int,
    align_ms: float = 0.0,
) -> Measured:
    """Reconstruct every item with one codec setting and score it against the reference at `eval_rate`
    (each output first aligned to its reference within `align_ms`, when that is above 0)."""
    measured = Measured(choice, codec, n_q, align_ms=align_ms)
    if not isinstance(codec, RoundTripCodec):
        measured.clab_sizes, measured.coding = clab_writer(codec, choice)
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
) -> np.ndarray:
    """Reconstruct one item and record its scores (and codes or coded bytes) in `measured`; returns the
    output at `eval_rate` (NaN when the codec failed)."""
    x = torch.as_tensor(load_audio(it.path, codec.sample_rate, codec.channels, it.start, it.end))
    measured.seconds += x.shape[-1] / codec.sample_rate
    row: dict[str, Any] = {"item": it.id, "codec": measured.choice.text, "label": measured.label, "n_q": n_q}
    try:
        estimate, codes, coded = reconstruct(codec, x, n_q)
    except Exception as err:  # noqa: BLE001 (the codec failed on this item: every metric fails, named)
        estimate, codes, coded = None, None, None
        row["error"] = f"{type(err).__name__}: {str(err)[:200]}"
    if codes is not None:
        measured.codes.append(codes)
        if measured.clab_sizes is not None:
            coded = measured.clab_sizes(codes, x.shape[-1])
    if coded is not None:
        measured.payload_bytes += coded[0]
        measured.container_bytes += coded[1]
    reference = references[it.id]
    if estimate is None:
        est = np.full_like(reference, np.nan)
    else:
        est = resample(_mono(estimate)[None], codec.sample_rate, eval_rate)[0]
    row["output_seconds"] = len(est) / eval_rate if estimate is not None else 0.0
    row["reference_seconds"] = len(reference) / eval_rate
    scores = M.compute(
        reference,
        est,
        eval_rate,
        metrics,
        it.text,
        it.language,
        reference_cache[it.id],
        speech=is_speech(it),
        max_delay=int(measured.align_ms * eval_rate / 1000),
    )
    if measured.align_ms:
        row["delay_ms"] = scores.delay * 1000 / eval_rate
    for key, value in scores.items():
        measured.scores.setdefault(key, []).append(value)
        row[key] = value
    for key in scores.failed:
        measured.failed[key] = measured.failed.get(key, 0) + 1
    for key in scores.skipped:
        measured.skipped[key] = measured.skipped.get(key, 0) + 1
    row["failed"], row["skipped"] = dict(scores.failed), dict(scores.skipped)
    measured.items.append(row)
    return est


def benchmark_items(data: list[str], max_items: int | None, max_seconds: float | None) -> list[AudioItem]:
    """The items of `data` a benchmark scores (limited), refusing audio inside containers."""
    items = _limit(discover(data), max_items, max_seconds)
    if not items:
        raise ValueError(f"no audio items in {data}")
    inside = next((it for it in items if it.member is not None), None)
    if inside is not None:
        raise ValueError(
            f"{inside.location}: the benchmarks read audio files and manifests of files; audio inside tar "
            "shards or datasets is read by `codeclab tokenize` only (extract the files first)"
        )
    return items


def _report_fields(
    flags: list[str], provenance_record: dict[str, Any], usable: list[str], status: dict[str, str]
) -> dict[str, Any]:
    """results.json's fields that describe the run: flags, provenance, metrics scored and skipped."""
    return {
        "flags": flags,
        "provenance": provenance_record,
        "skipped_metrics": {m: r for m, r in status.items() if r},
        "metrics": {
            m: {"higher_is_better": M.SPECS[m].higher_is_better, "description": M.SPECS[m].description}
            for m in usable
        },
    }


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
    html: bool = False,
    listen_items: int = 3,
    align_ms: float = 0.0,
    plot_rate: str = "coded",
    listen: str = "first",
) -> dict[str, Any]:
    """Run the benchmark and write results.json, results.csv, results.md, items.jsonl and plots/ under
    `out` (and with `html`, report.html: the tables, plots and, for `listen_items` items chosen by
    `listen` (first, worst, random, or comma-separated ids), players and spectrograms of every setting):
    measure each codec setting, aggregate a row per setting, flag bitrates that buy nothing."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = M.expand(metrics or M.DEFAULT_METRICS)
    status = M.metric_status(names)
    usable = [m for m in names if not status[m]]
    for metric, reason in status.items():
        if reason:
            log(f"skipping {metric}: {reason}")
    items = benchmark_items(data, max_items, max_seconds)
    references = {it.id: load_audio(it.path, eval_rate, 1, it.start, it.end)[0] for it in items}
    reference_cache: dict[str, dict] = {it.id: {} for it in items}
    item_rows: list[dict[str, Any]] = []
    fingerprints: dict[str, Any] = {}
    settings: list[Measured] = []
    for spec in codecs:
        choice = CodecChoice.parse(spec, random_init)
        codec = choice.load(roundtrip=True)
        fingerprints[spec] = codec_fingerprint(codec)
        classic = isinstance(codec, RoundTripCodec)
        for n_q in [None] if classic else (choice.n_q or default_n_q(codec.num_codebooks)):
            measured = measure(
                choice, codec, n_q, items, references, reference_cache, usable, eval_rate, align_ms=align_ms
            )
            settings.append(measured)
            item_rows += measured.items
    floor_failed_scores(settings)
    rows = [aggregate(measured, len(items)) for measured in settings]
    for row in rows:
        log(
            f"{row['label']}: "
            + ", ".join(f"{k} {row[k]:.3f}" for k in usable if isinstance(row.get(k), float))
        )
    flags = bitrate_flags(rows, {m: M.SPECS[m].higher_is_better for m in usable})
    for flag in flags:
        log(f"warning: {flag}")
    if settings:
        rows.insert(0, original_row(settings[0], len(items)))
    data_facts = {
        "inputs": data,
        "items": len(items),
        "sha256": data_fingerprint(items),
        "max_items": max_items,
        "max_seconds": max_seconds,
    }
    report = _report_fields(flags, provenance(command, codecs=fingerprints, data=data_facts), usable, status)
    report.update(eval_rate=eval_rate, align_ms=align_ms, results=rows)
    report["metric_rates"] = {m: (M.SPECS[m].rate or eval_rate) for m in usable}
    report = write_report(out, report, usable, status, eval_rate, item_rows, plot_rate)
    if html:
        from codeclab.eval.html import write_html_report
        from codeclab.eval.listen import choose_items, listening_items

        chosen = choose_items(listen, listen_items, items, settings, usable)
        players = listening_items(chosen, settings, rows, eval_rate, reconstruct)
        shown = [m for m in usable if any(isinstance(r.get(m), float) for r in rows)]
        descriptions = {m: M.SPECS[m].description for m in shown}
        write_html_report(out / "report.html", report, shown, players, eval_rate, descriptions, listen)
        report["html"] = str(out / "report.html")
    return report
