"""Audio file <-> .clab file through a codec (the library side of `codeclab encode` / `decode`)."""

from __future__ import annotations

from pathlib import Path

import torch

from codeclab.audio.io import audio_info, load_audio, stream_audio, write_audio, write_audio_blocks
from codeclab.codecs.base import AudioCodec, Encoded
from codeclab.codecs.chunked import DEFAULT_CHUNK_SECONDS, decode_stream, encode_stream
from codeclab.codecs.spec import CodecSpec, fingerprint, open_recorded_codec
from codeclab.tokens.clab import ClabFormatError, read_clab, write_clab


def encode_file(
    source: str | Path,
    target: str | Path,
    spec: CodecSpec,
    n_q: int | None = None,
    long_seconds: float = 300.0,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> tuple[int, float, int, AudioCodec]:
    """Encode an audio file into a .clab file. Returns (bytes written, seconds of audio, n_q, codec).

    Files longer than `long_seconds` are read and encoded in chunks (bounded memory, the same codes as a
    whole pass) when the codec's encoder context is bounded, as codeclab's codecs' are."""
    codec = spec.load()
    n_q = codec.check_n_q(n_q)
    if audio_info(source).duration > long_seconds and codec.encoder_context() is not None:
        blocks = stream_audio(source, codec.sample_rate, codec.channels)
        encoded = encode_stream(codec, blocks, n_q=n_q, chunk_seconds=chunk_seconds)
    else:
        wav = torch.as_tensor(load_audio(source, codec.sample_rate, codec.channels))
        encoded = codec.encode(wav[None], n_q=n_q)
    audio_length = int(encoded.audio_lengths[0])
    header = {**clab_header(codec, spec), "audio_length": audio_length}
    size = write_clab(target, encoded.items()[0].cpu().numpy(), header)
    return size, audio_length / codec.sample_rate, n_q, codec


def clab_header(codec: AudioCodec, spec: CodecSpec) -> dict:
    """The .clab header fields that describe the codec (a record to reopen it, and its stream facts)."""
    full = fingerprint(codec, spec)
    record = {"name": full["name"], "random_init": full["random_init"], "seed": full["seed"]}
    if full["weights"] is not None:
        record["weights"] = full["weights"]
    if full["weights_sha256"] is not None:
        record["weights_sha256"] = full["weights_sha256"][:16]  # 64 bits: enough to catch the wrong codec
    return {
        "codec": record,
        "sample_rate": codec.sample_rate,
        "channels": codec.channels,
        "hop_length": codec.hop_length,
        "codebook_size": codec.codebook_size,
    }


def decode_file(
    source: str | Path,
    target: str | Path,
    codec_override: CodecSpec | None = None,
    long_seconds: float = 300.0,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> float:
    """Decode a .clab file to audio with the codec it records (or `codec_override`); returns seconds.
    Items longer than `long_seconds` are decoded and written in chunks (bounded memory) when the codec's
    decoder context is bounded."""
    clab = read_clab(source)
    codec = codec_for_header(clab.header, codec_override, source)
    codes = torch.from_numpy(clab.codes)
    encoded = Encoded(codes[None], torch.tensor([codes.shape[1]]), torch.tensor([clab.audio_length]))
    try:
        encoded = codec.checked(encoded)
    except ValueError as err:
        raise ClabFormatError(f"{source}: the codes do not fit codec {codec.name} ({err})") from err
    write_decoded(codec, encoded, target, long_seconds, chunk_seconds)
    return clab.audio_length / codec.sample_rate


def codec_for_header(header: dict, override: CodecSpec | None, source: str | Path) -> AudioCodec:
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
) -> None:
    """Decode one item (batch of 1) to an audio file: in chunks when it is long and the codec allows."""
    length = int(codec.decode_lengths(encoded)[0])
    if length > long_seconds * codec.sample_rate and codec.decoder_context() is not None:
        codes = encoded.items()[0]
        blocks = (b.cpu().numpy() for b in decode_stream(codec, codes, length, chunk_seconds))
        write_audio_blocks(target, blocks, codec.sample_rate, codec.channels)
    else:
        write_audio(target, codec.decode(encoded)[0].cpu().numpy(), codec.sample_rate)
