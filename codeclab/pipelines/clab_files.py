"""Audio file <-> .clab file through a codec (the library side of `codeclab encode` / `decode`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from codeclab._files import atomic_write_bytes
from codeclab.audio.io import audio_info, load_audio, stream_audio, write_audio, write_audio_blocks
from codeclab.catalog.fingerprint import fingerprint, open_recorded_codec
from codeclab.catalog.ref import CodecRef
from codeclab.codecs.base import AudioCodec, Encoded
from codeclab.codecs.chunked import (
    DEFAULT_CHUNK_SECONDS,
    decode_stream,
    encode_stream,
    encodes_in_chunks,
)
from codeclab.tokens.clab import (
    ClabFormatError,
    from_bytes,
    peek_header,
    read_clab_bytes,
)
from codeclab.tokens.clab_packets import MAX_PACKET_FRAMES, concealment_gain, write_packets
from codeclab.tokens.entropy import EntropyModel

DEFAULT_PACKET_MS = 100.0  # packets of about 100 ms: a lost packet costs that much audio


@dataclass
class EncodedFile:
    """What `encode_file` wrote: file bytes, payload bytes (the codes alone), seconds, codebooks, the
    coding ("bits" or "range") and the codec."""

    size: int
    payload: int
    seconds: float
    n_q: int
    coding: str
    codec: AudioCodec


def resolve_coding(codec: AudioCodec, coding: str) -> tuple[str, EntropyModel | None]:
    """ "auto" -> "range" when the codec's weights ship an entropy model, else "bits"; "range" without
    a model is an error naming the codec."""
    if coding not in ("auto", "bits", "range"):
        raise ValueError(f"coding must be auto, bits or range, got {coding!r}")
    model = codec.entropy_model() if coding != "bits" else None
    if coding == "range" and model is None:
        raise ValueError(
            f"codec {codec.name} has no entropy model (its weights directory has no entropy.safetensors; "
            "`codeclab entropy` fits one); use --coding bits"
        )
    return ("range" if model is not None else "bits"), model


def packet_frames_for(codec: AudioCodec, packet_ms: float) -> int:
    """Frames per packet for about `packet_ms` milliseconds (at least 1, at most 255)."""
    if not packet_ms > 0:
        raise ValueError(f"packet duration must be positive, got {packet_ms} ms")
    return min(max(round(packet_ms / 1000 * codec.frame_rate), 1), MAX_PACKET_FRAMES)


def encode_file(
    source: str | Path,
    target: str | Path,
    spec: CodecRef,
    n_q: int | None = None,
    long_seconds: float = 300.0,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    coding: str = "auto",
    packet_ms: float = DEFAULT_PACKET_MS,
) -> EncodedFile:
    """Encode an audio file into a version-3 .clab file: packets of about `packet_ms`, range coded with
    the codec's entropy model (`coding` "auto" or "range") or bit-packed ("bits").

    Files longer than `long_seconds` are read and encoded in chunks (bounded memory) when the codec states
    a `long_file_context`: the same codes as a whole pass for codeclab's codecs, a stated window for peers."""
    codec = spec.load()
    n_q = codec.check_n_q(n_q)
    coding, model = resolve_coding(codec, coding)
    frames_per_packet = packet_frames_for(codec, packet_ms)
    if audio_info(source).duration > long_seconds and encodes_in_chunks(codec, n_q):
        blocks = stream_audio(source, codec.sample_rate, codec.channels)
        encoded = encode_stream(codec, blocks, n_q=n_q, chunk_seconds=chunk_seconds)
    else:
        wav = torch.as_tensor(load_audio(source, codec.sample_rate, codec.channels))
        encoded = codec.encode(wav[None], n_q=n_q)
    audio_length = int(encoded.audio_lengths[0])
    header = {**clab_header(codec, spec), "audio_length": audio_length}
    blob, payload = write_packets(encoded.items()[0].cpu().numpy(), header, coding, model, frames_per_packet)
    atomic_write_bytes(Path(target), blob)
    return EncodedFile(len(blob), payload, audio_length / codec.sample_rate, n_q, coding, codec)


def clab_header(codec: AudioCodec, spec: CodecRef) -> dict:
    """The .clab header fields that describe the codec (a record to reopen it, and its stream facts)."""
    full = fingerprint(codec, spec)
    record = {"name": full["name"], "random_init": full["random_init"], "seed": full["seed"]}
    if full["weights"] is not None:
        record["weights"] = full["weights"]
    if full["weights_sha256"] is not None:
        record["weights_sha256"] = full["weights_sha256"][:16]  # 64 bits: enough to catch the wrong codec
    record["config_sha256"] = full["config_sha256"][:16]  # a config.json edited since is caught too
    return {
        "codec": record,
        "sample_rate": codec.sample_rate,
        "channels": codec.channels,
        "hop_length": codec.hop_length,
        "codebook_size": codec.codebook_size,
    }


@dataclass
class DecodedFile:
    """What `decode_file` wrote: seconds of audio, frames concealed and the damage met (version 3)."""

    seconds: float
    concealed_frames: int = 0
    damage: list[str] = field(default_factory=list)


def decode_file(
    source: str | Path,
    target: str | Path,
    codec_override: CodecRef | None = None,
    long_seconds: float = 300.0,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    strict: bool = False,
) -> DecodedFile:
    """Decode a .clab file (any version) to audio with the codec it records (or `codec_override`).
    Lost or damaged packets of a version-3 file are concealed (their frames repeat the last good frame
    and fade out; docs/bitstream.md) and counted, or raise ClabFormatError when `strict`. Items longer
    than `long_seconds` are decoded and written in chunks (bounded memory) when the codec's decoder
    context is bounded."""
    data = read_clab_bytes(source)
    header = peek_header(data, str(source))
    codec = codec_for_header(header, codec_override, source)
    model = codec.entropy_model() if header.get("coding") == "range" else None
    clab = from_bytes(data, str(source), model, strict)
    codes = torch.from_numpy(clab.codes)
    encoded = Encoded(codes[None], torch.tensor([codes.shape[1]]), torch.tensor([clab.audio_length]))
    try:
        encoded = codec.checked(encoded)
    except ValueError as err:
        raise ClabFormatError(f"{source}: the codes do not fit codec {codec.name} ({err})") from err
    gain = None
    if clab.concealed_frames:
        gain = concealment_gain(clab.lost, codec.hop_length, int(codec.decode_lengths(encoded)[0]))
    write_decoded(codec, encoded, target, long_seconds, chunk_seconds, gain)
    return DecodedFile(clab.audio_length / codec.sample_rate, clab.concealed_frames, clab.damage)


def codec_for_header(header: dict, override: CodecRef | None, source: str | Path) -> AudioCodec:
    """The codec a .clab header records (or `override`), checked against the header's facts."""
    record = header.get("codec")
    if not isinstance(record, dict) or "name" not in record:
        raise ClabFormatError(f"{source}: the header does not name its codec")
    try:
        codec = open_recorded_codec(record, override)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err
    if codec.codebook_size != header["codebook_size"] or codec.sample_rate != header["sample_rate"]:
        raise ValueError(
            f"{source}: codec {codec.name} does not match the file (codebook size or sample rate)"
        )
    return codec


def write_decoded(
    codec: AudioCodec,
    encoded: Encoded,
    target: str | Path,
    long_seconds: float = 300.0,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    gain: np.ndarray | None = None,
) -> None:
    """Decode one item (batch of 1) to an audio file: in chunks when it is long and the codec allows;
    `gain` [samples] (concealment's fades) multiplies the audio."""
    length = int(codec.decode_lengths(encoded)[0])
    streams = getattr(codec, "causal", False) and hasattr(codec, "streaming")
    if length > long_seconds * codec.sample_rate and (codec.decoder_context() is not None or streams):
        codes = encoded.items()[0]

        def blocks():
            done = 0
            for block in decode_stream(codec, codes, length, chunk_seconds):
                block = block.cpu().numpy()
                if gain is not None:
                    block = block * gain[done : done + block.shape[-1]]
                done += block.shape[-1]
                yield block

        write_audio_blocks(target, blocks(), codec.sample_rate, codec.channels)
    else:
        audio = codec.decode(encoded)[0].cpu().numpy()
        if gain is not None:
            audio = audio * gain[: audio.shape[-1]]
        write_audio(target, audio, codec.sample_rate)
