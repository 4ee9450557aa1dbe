"""`codeclab list` and `codeclab info`: what codecs exist and what they produce."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.table import Table

from codeclab.cli.common import console, fail, format_bitrate


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("info")(info_command)
    app.command("bundle")(bundle_command)
    app.command("entropy")(entropy_command)


def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered codecs: rates, codebooks, bitrates, weights and licences."""
    from codeclab.catalog.registry import entries

    rows = sorted(entries().values(), key=lambda e: (e.family != "codeclab", e.name))
    if as_json:
        data = [
            {
                "name": e.name,
                "family": e.family,
                "sample_rate": e.sample_rate,
                "frame_rate": e.frame_rate,
                "num_codebooks": e.num_codebooks,
                "codebook_size": e.codebook_size,
                "bitrates": e.bitrates(),
                "causal": e.causal,
                "source": e.source,
                "code_licence": e.code_licence,
                "weights": e.weights,
                "weights_licence": e.weights_licence,
                "model_card": e.extra.get("card"),
                "description": e.description,
            }
            for e in rows
        ]
        console.print_json(json.dumps(data))
        return
    table = Table(title="codeclab codecs (codeclab info NAME for details)")
    table.add_column("name", no_wrap=True)
    for column in ("kHz", "frames/s", "codebooks", "bitrate", "causal", "weights", "licence code / weights"):
        table.add_column(column)
    for e in rows:
        rates = e.bitrates()
        if not rates:
            bitrate = e.bitrate_note
        elif len(rates) == 1:
            bitrate = format_bitrate(rates[0])
        else:
            bitrate = f"{format_bitrate(rates[0])} - {format_bitrate(rates[-1])}"
        table.add_row(
            e.name,
            f"{e.sample_rate / 1000:g}",
            f"{e.frame_rate:g}",
            f"{e.num_codebooks} x {e.codebook_size}" if e.num_codebooks else "none (waveform)",
            bitrate,
            "-" if e.causal is None else ("yes" if e.causal else "no"),
            ("bundled" if e.weights.startswith("bundled") else e.weights)
            if e.weights
            else ("n/a" if e.family == "classic" else "none"),
            f"{e.code_licence} / {e.weights_licence}",
        )
    console.print(table)


def _neural_rows(table: Table, codec) -> None:
    """A codeclab codec's own rows: hop, streaming latency, parameter counts, distillation."""
    counts = codec.parameter_counts()
    table.add_row("hop length", f"{codec.hop_length} samples")
    latency = codec.latency
    table.add_row(
        "latency (streaming)",
        f"encode {latency.encode_ms:g} ms (one frame), decode {latency.decode_ms:g} ms (lookahead), "
        f"round trip {latency.roundtrip_ms:g} ms; docs/streaming.md"
        if latency is not None
        else "none: not causal, encodes and decodes whole files",
    )
    table.add_row(
        "parameters",
        ", ".join(f"{part} {n / 1e6:.2f} M" for part, n in counts.items())
        + f" (total {sum(counts.values()) / 1e6:.2f} M)",
    )
    semantic = codec.config.semantic
    if semantic is not None:
        table.add_row(
            "distilled",
            f"{semantic.loss} loss (weight {semantic.weight:g}) from {semantic.teacher} into "
            f"{semantic.codebooks} codebook(s)",
        )


def info_command(
    name: str = typer.Argument(..., help="Codec name or a directory written by save_pretrained."),
) -> None:
    """Show one codec in detail, including parameter counts."""
    from codeclab.catalog.registry import get_entry
    from codeclab.codecs.neural import NeuralCodec

    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    if Path(name).is_dir():
        from codeclab.catalog.loading import load_pretrained

        try:
            codec = load_pretrained(name)
        except (OSError, ValueError) as err:
            fail(err)
        facts = codec.describe()
        weights = f"{name} (sha256 {codec.weights_sha256})"
        licence = "see the directory's own terms"
        description = f"saved codec ({codec.name})"
    else:
        try:
            entry = get_entry(name)
        except ValueError as err:
            fail(err)
        facts = {
            "sample_rate": entry.sample_rate,
            "frame_rate": entry.frame_rate,
            "num_codebooks": entry.num_codebooks,
            "codebook_size": entry.codebook_size,
            "causal": entry.causal,
        }
        weights = entry.weights or ("n/a" if entry.family == "classic" else "none released")
        if entry.family == "peer":
            weights += " (pass --weights with a local directory or this hub id; --random-init for an untrained model)"
        licence = f"code {entry.code_licence}; weights {entry.weights_licence}"
        description = entry.description
        codec = None
        if entry.family == "codeclab":
            codec = entry.factory(random_init=entry.weights is None)
            if entry.weights is not None:
                weights = f"{entry.weights}, sha256 {codec.weights_sha256}"
    table.add_row("name", name)
    table.add_row("description", description)
    table.add_row("sample rate", f"{facts['sample_rate']} Hz")
    table.add_row("frame rate", f"{facts['frame_rate']:g} frames/s")
    if facts["num_codebooks"]:
        table.add_row("codebooks", f"{facts['num_codebooks']} x {facts['codebook_size']}")
        rate, bits = facts["frame_rate"], math.log2(facts["codebook_size"])
        rates = [n * rate * bits for n in range(1, facts["num_codebooks"] + 1)]
        table.add_row("bitrates (n_q = 1..)", ", ".join(format_bitrate(b) for b in rates))
    else:
        table.add_row("codebooks", "none: a waveform codec, compared through roundtrip()")
    if facts.get("causal") is not None:
        table.add_row("causal", "yes" if facts["causal"] else "no")
    if isinstance(codec, NeuralCodec):
        _neural_rows(table, codec)
    if codec is not None and codec.entropy_record is not None:
        table.add_row("entropy coding", entropy_summary(codec.entropy_record))
    if not Path(name).is_dir():
        table.add_row("source", entry.source)
    table.add_row("weights", weights)
    table.add_row("licence", licence)
    if not Path(name).is_dir():
        if entry.extra.get("version"):
            table.add_row("preset version", str(entry.extra["version"]))
        if entry.extra.get("card"):
            table.add_row("model card", entry.extra["card"])
    console.print(table)


def bundle_command(
    source: Path = typer.Argument(..., help="Trained codec directory (e.g. RUN/codec from codeclab train)."),
    preset: str = typer.Option(
        "codeclab-16k-speech", "--preset", help="Preset whose bundled weights these become."
    ),
    fp32: bool = typer.Option(False, "--fp32", help="Store fp32 (default: fp16, half the size)."),
) -> None:
    """Make trained weights the package's bundled default for a preset (codeclab/catalog/weights/NAME)."""
    import torch

    from codeclab.catalog.presets import bundle_weights

    try:
        target = bundle_weights(source, preset, None if fp32 else torch.float16)
    except (OSError, ValueError) as err:
        fail(err)
    size = (target / "model.safetensors").stat().st_size / 1e6
    console.print(f"{target}: {size:.1f} MB; load_codec('{preset}') now loads these weights")


def entropy_summary(record: dict) -> str:
    """One line on a codec's entropy model: what it was fitted on and its held-out range-coded rates."""
    fitted = record.get("fitted_on", {})
    line = f"model {record['sha256'][:16]}..., fitted on {fitted.get('items', '?')} items of {fitted.get('store', '?')}"
    heldout = record.get("heldout")
    if heldout:
        rates = ", ".join(
            f"n_q {n}: {heldout['kbps'][n]:.2f} of {heldout['nominal_kbps'][n]:g}" for n in heldout["kbps"]
        )
        line += f"; range-coded kbps on held-out {heldout['store']} ({heldout['seconds']:g} s): {rates}"
    return line


def entropy_command(
    store: Path = typer.Argument(..., help="Token store of the codec's codes on its training corpus."),
    weights: Path = typer.Option(
        ..., "--weights", help="The codec's weights directory; the model is written and recorded there."
    ),
    heldout: Path = typer.Option(
        None, "--heldout", help="A token store of held-out speech (same codec) to measure real kbps on."
    ),
) -> None:
    """Fit the entropy model that range codes .clab files (code counts per codebook) and ship it with the
    weights (docs/bitstream.md)."""
    from codeclab.pipelines.entropy_fit import fit_entropy_model
    from codeclab.tokens.store import StoreError

    try:
        record = fit_entropy_model(store, weights, heldout)
    except (OSError, ValueError, StoreError) as err:
        fail(err)
    console.print(f"{weights}/entropy.safetensors: {entropy_summary(record)}")
