"""Quality under transport damage: packet loss and random bit errors (`codeclab bench loss`).

Token codecs go through the `.clab` files `codeclab encode` writes (version 3: packets of 100 ms, range
coded when the codec ships an entropy model) and `codeclab decode`'s concealment; Opus goes through
libopus (opuslib) with 20 ms frames sent five to a 100 ms packet, a lost packet's frames decoded by Opus's
own packet loss concealment. Both lose the same audio per lost packet. The file header is taken as
delivered (a stream sends it once, reliably); every packet after it, the end packet too, can be lost.

- Packet loss at rate p: each packet is dropped independently with probability p (seeded).
- Bit errors at rate b: each bit after the header flips independently with probability b. A `.clab`
  packet whose CRC fails is concealed; Opus has no checksum, so a damaged Opus packet is decoded as it
  is (a packet libopus refuses is concealed).

Each item's output is aligned to the original within 10 ms and scored against it (STOI and mel distance
by default); a row per codec and condition gives the mean over items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codeclab.audio.io import load_audio, resample
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec, Encoded
from codeclab.corpora.manifest import discover
from codeclab.eval import metrics as M
from codeclab.eval.report import plot_curves, provenance, write_json, write_table
from codeclab.tokens.clab_packet_reader import read_packets
from codeclab.tokens.clab_packets import packet_spans

OPUS_FRAME_MS = 20
OPUS_FRAMES_PER_PACKET = 5  # 100 ms packets, as the .clab default
ALIGN_MS = 10.0  # every output is aligned to its reference within this before scoring


@dataclass(frozen=True)
class Condition:
    """Packet loss ("loss", rate = probability a packet is lost) or bit errors ("ber", per bit)."""

    kind: str
    rate: float

    @property
    def label(self) -> str:
        return "clean" if self.rate == 0 else f"{self.kind} {self.rate:g}"


def conditions(losses: list[float], bers: list[float]) -> list[Condition]:
    for rate in [*losses, *bers]:
        if not 0 <= rate < 1:
            raise ValueError(f"loss and bit error rates must lie in [0, 1), got {rate}")
    out = [Condition("loss", 0.0)]
    out += [Condition("loss", r) for r in losses if r > 0]
    out += [Condition("ber", r) for r in bers if r > 0]
    return out


def flip_bits(data: bytes, ber: float, rng: np.random.Generator) -> bytes:
    """`data` with each bit flipped independently with probability `ber`."""
    bits = len(data) * 8
    count = rng.binomial(bits, ber) if bits else 0
    if not count:
        return data
    out = bytearray(data)
    for position in rng.choice(bits, size=count, replace=False):
        out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


def damage_clab(blob: bytes, condition: Condition, rng: np.random.Generator) -> bytes:
    """A `.clab` version-3 file as received: packets dropped or bits flipped after the header."""
    header_end, spans = packet_spans(blob)
    if condition.rate == 0:
        return blob
    if condition.kind == "loss":
        kept = [blob[a:b] for a, b in spans if rng.random() >= condition.rate]
        return blob[:header_end] + b"".join(kept)
    return blob[:header_end] + flip_bits(blob[header_end:], condition.rate, rng)


def token_codec_output(
    codec: AudioCodec, blob: bytes, length: int, condition: Condition, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """A clean `.clab` file `blob` of `length` samples -> damaged -> lenient read -> decode with
    concealment fades. Returns (audio [C, T'], frames concealed)."""
    from codeclab.tokens.clab_packets import concealment_gain

    try:
        clab = read_packets(damage_clab(blob, condition, rng), "damaged", codec.entropy_model())
    except ValueError:  # nothing usable arrived: the output is silence
        frames = -(-length // codec.hop_length)
        return np.zeros((codec.channels, length), np.float32), frames
    got = torch.from_numpy(clab.codes)
    audio = codec.decode(Encoded(got[None], torch.tensor([got.shape[1]]), torch.tensor([length])))[0]
    audio = audio.cpu().numpy()
    if clab.concealed_frames:
        audio = audio * concealment_gain(clab.lost, codec.hop_length, audio.shape[-1])
    return audio, clab.concealed_frames


def _opuslib():
    try:
        import opuslib
    except ImportError as err:
        raise ImportError("the Opus loss benchmark needs opuslib and libopus: pip install opuslib") from err
    except Exception as err:  # noqa: BLE001 (opuslib raises when libopus itself is missing)
        raise ImportError(f"opuslib cannot load libopus ({err}): apt-get install libopus0") from err
    return opuslib


@dataclass
class OpusStream:
    """An item encoded by libopus: 20 ms packets, the encoder's lookahead and the item's length."""

    packets: list[bytes]
    frame: int
    delay: int
    length: int
    sample_rate: int


def opus_encode(x: np.ndarray, sample_rate: int, bitrate: int) -> OpusStream:
    """Mono x [T] float -> libopus packets (VOIP mode, 20 ms frames), padded to cover the lookahead."""
    opuslib = _opuslib()
    frame = sample_rate * OPUS_FRAME_MS // 1000
    encoder = opuslib.Encoder(sample_rate, 1, opuslib.APPLICATION_VOIP)
    encoder.bitrate = bitrate
    delay = int(encoder.lookahead)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    pcm = np.concatenate([pcm, np.zeros(delay + (-(len(pcm) + delay)) % frame, "<i2")])
    packets = [encoder.encode(pcm[i : i + frame].tobytes(), frame) for i in range(0, len(pcm), frame)]
    return OpusStream(packets, frame, delay, len(x), sample_rate)


def opus_decode(stream: OpusStream, condition: Condition, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Damage `stream` (five frames to a lost packet, or bit flips) and decode it with Opus's concealment
    for lost frames. Returns (audio [T], frames concealed)."""
    opuslib = _opuslib()
    frames = stream.packets
    lost = np.zeros(len(frames), bool)
    if condition.kind == "loss" and condition.rate > 0:
        for start in range(0, len(frames), OPUS_FRAMES_PER_PACKET):
            if rng.random() < condition.rate:
                lost[start : start + OPUS_FRAMES_PER_PACKET] = True
    elif condition.rate > 0:
        frames = [flip_bits(f, condition.rate, rng) for f in frames]
    decoder = opuslib.Decoder(stream.sample_rate, 1)
    out = []
    for i, packet in enumerate(frames):
        if not lost[i]:
            try:
                out.append(np.frombuffer(decoder.decode(packet, stream.frame), "<i2"))
                continue
            except opuslib.OpusError:
                lost[i] = True  # a packet libopus refuses: concealed like a lost one
        out.append(np.frombuffer(decoder.decode(b"", stream.frame), "<i2"))
    audio = np.concatenate(out).astype(np.float32) / 32768.0
    return audio[stream.delay : stream.delay + stream.length], int(lost.sum())


def opus_output(
    x: np.ndarray, sample_rate: int, bitrate: int, condition: Condition, rng: np.random.Generator
) -> tuple[np.ndarray, int, int]:
    """Mono x [T] float through libopus, damaged, decoded (`opus_encode`, `opus_decode`). Returns
    (audio [T], frames concealed, frames)."""
    stream = opus_encode(x, sample_rate, bitrate)
    audio, concealed = opus_decode(stream, condition, rng)
    return audio, concealed, len(stream.packets)


@dataclass
class _Subject:
    """One codec of the loss benchmark: a token codec (`codec`, its .clab writer and n_q) or opus
    (`codec` None, its bitrate)."""

    label: str
    codec: Any = None
    write: Any = None
    n_q: int | None = None
    bitrate: int = 6000


def _subject(spec: str, fingerprints: dict[str, Any]) -> _Subject:
    from codeclab.codecs.roundtrip import RoundTripCodec
    from codeclab.eval.recon import clab_writer, codec_fingerprint

    choice = CodecRef.parse(spec)
    if choice.name == "opus":
        bitrate = int(choice.options.get("bitrate", 6000))
        fingerprints[spec] = {"name": "opus", "bitrate": bitrate, "library": "libopus via opuslib"}
        return _Subject(f"opus {bitrate / 1000:g} kbps (libopus PLC)", bitrate=bitrate)
    codec = choice.load(roundtrip=True)
    if isinstance(codec, RoundTripCodec):
        raise ValueError(f"{spec}: only token codecs and opus are supported by the loss benchmark")
    fingerprints[spec] = codec_fingerprint(codec)
    write, coding = clab_writer(codec, choice, with_bytes=True)
    label = f"{spec} ({coding} coded" + (", random init)" if codec.random_init else ")")
    return _Subject(label, codec, write, choice.single_n_q() if choice.n_q else None)


def _encode_once(subject: _Subject, items: list) -> dict[str, Any]:
    """Each item encoded once; every condition damages and decodes that same stream."""
    encoded: dict[str, Any] = {}
    codec = subject.codec
    for it in items:
        if codec is None:
            audio = load_audio(it.path, 16000, 1, it.start, it.end)[0]
            encoded[it.id] = opus_encode(audio, 16000, subject.bitrate)
        else:
            x = torch.as_tensor(load_audio(it.path, codec.sample_rate, codec.channels, it.start, it.end))
            codes = codec.encode(x[None], n_q=subject.n_q).items()[0].cpu().numpy()
            encoded[it.id] = (subject.write(codes, x.shape[-1]), x.shape[-1], codes.shape[1])
    return encoded


def _score_condition(
    subject: _Subject,
    condition: Condition,
    items: list,
    encoded: dict[str, Any],
    references: dict[str, np.ndarray],
    names: list[str],
    eval_rate: int,
    seed: int,
) -> dict[str, Any]:
    """The row of one codec under one condition: mean scores over the items, frames concealed."""
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {m: [] for m in M.expand(names)}
    concealed = total = 0
    for it in items:
        if subject.codec is None:
            audio, c = opus_decode(encoded[it.id], condition, rng)
            f, rate = len(encoded[it.id].packets), 16000
        else:
            blob, length, f = encoded[it.id]
            audio, c = token_codec_output(subject.codec, blob, length, condition, rng)
            audio, rate = audio.mean(axis=0), subject.codec.sample_rate
        concealed, total = concealed + c, total + f
        estimate = resample(np.asarray(audio, np.float32)[None], rate, eval_rate)[0]
        scored = M.compute(
            references[it.id], estimate, eval_rate, names, max_delay=int(ALIGN_MS * eval_rate / 1000)
        )
        for name, value in scored.items():
            if name in scores:
                scores[name].append(value)
    row = {
        "codec": subject.label,
        "condition": condition.label,
        "kind": condition.kind,
        "rate": condition.rate,
        "items": len(items),
        "concealed_percent": 100 * concealed / max(total, 1),
    }
    row.update({m: float(np.nanmean(v)) if v else math.nan for m, v in scores.items()})
    return row


def _write_results(out: Path, report: dict[str, Any], names: list[str], eval_rate: int) -> None:
    """results.json, the table and a plot per metric and kind (loss: linear axis; ber: log axis)."""
    rows = report["results"]
    shown = list(M.expand(names))
    notes = [
        "Each row: the mean over the items of the output scored against the original at "
        f"{eval_rate} Hz; concealed_percent: frames the decoder concealed.",
        "Token codecs: .clab version 3, 100 ms packets; Opus: 20 ms frames, five to a 100 ms packet, "
        "libopus loss concealment. The header is taken as delivered.",
    ]
    write_table(
        rows,
        ["codec", "condition", "concealed_percent", *shown],
        out / "results",
        "Quality under damage",
        notes,
    )
    plots = []
    better = {m: M.SPECS[m].higher_is_better for m in shown}
    for kind, x, xlabel in (("loss", "loss_percent", "packet loss (%)"), ("ber", "rate", "bit error rate")):
        if kind == "loss":  # linear axis from the clean run (0 %)
            points = [{**r, x: 100 * r["rate"]} for r in rows if r["kind"] == "loss"]
        else:
            points = [r for r in rows if r["kind"] == "ber"]
        labels = {x: xlabel, **{m: M.SPECS[m].description for m in shown}}
        curves = plot_curves(points, shown, x, "codec", out / "plots" / kind, labels, better, kind == "ber")
        plots += [str(p) for p in curves]
    report["plots"] = plots
    write_json(report, out / "results.json")


def run_robustness(
    codecs: list[str],
    data: list[str],
    out: str | Path,
    losses: list[float],
    bers: list[float],
    metrics: list[str] | None = None,
    eval_rate: int = 16000,
    max_items: int | None = None,
    seed: int = 0,
    command: list[str] | None = None,
    log=print,
) -> dict[str, Any]:
    """Score every codec on every item under every condition; write results.json/.csv/.md and one plot
    per metric and kind (quality against the loss rate; against the bit error rate, log axis) under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = metrics or ["stoi", "mel_distance"]
    missing = {m: r for m, r in M.metric_status(names).items() if r}
    if missing:
        raise ValueError(f"metrics not available: {missing}")
    items = discover(data)[: max_items or None]
    if not items:
        raise ValueError(f"no audio items in {data}")
    references = {it.id: load_audio(it.path, eval_rate, 1, it.start, it.end)[0] for it in items}
    rows: list[dict[str, Any]] = []
    fingerprints: dict[str, Any] = {}
    for spec in codecs:
        subject = _subject(spec, fingerprints)
        encoded = _encode_once(subject, items)
        for condition in conditions(losses, bers):
            row = _score_condition(subject, condition, items, encoded, references, names, eval_rate, seed)
            rows.append(row)
            log(
                f"{subject.label}, {condition.label}: "
                + ", ".join(f"{m} {row[m]:.3f}" for m in M.expand(names))
            )
    report = {
        "results": rows,
        "provenance": provenance(command, codecs=fingerprints, data={"inputs": data, "items": len(items)}),
    }
    write_json(report, out / "results.json")
    _write_results(out, report, names, eval_rate)
    return report
