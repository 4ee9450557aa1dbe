"""The reading half of corpus tokenization: worker processes read, hash, decode, mix channels and resample
each item (`DecodeDataset`); the main process groups decoded items into length-bucketed batches and streams
files over the long-file limit through the codec in chunks (`encode_long`)."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import numpy as np
import torch

from codeclab._files import sha256_file
from codeclab.audio.io import (
    AudioError,
    audio_info,
    load_audio,
    read_audio,
    resample,
    stream_audio,
    to_channels,
)
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.chunked import encode_stream, encodes_in_chunks
from codeclab.corpora.manifest import AudioItem
from codeclab.corpora.members import MemberError

log = logging.getLogger("codeclab.tokenize")


class DecodeDataset(torch.utils.data.Dataset):
    """Item i -> dict with `audio` [C, T] float32 at the codec's rate, or `error`, or `long` (to be
    streamed by the main process). Never raises: every failure becomes an `error` entry."""

    def __init__(self, items: list[AudioItem], sample_rate: int, channels: int, long_seconds: float) -> None:
        self.items, self.sample_rate, self.channels, self.long_seconds = (
            items,
            sample_rate,
            channels,
            long_seconds,
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        start = time.perf_counter()
        where = item.location
        try:
            data = None
            if item.member is None:  # a file: its header says whether it is long, before it is read
                info = audio_info(item.path)
            else:  # audio inside a container is read whole
                data = item.read_bytes()
                info = audio_info(where, data)
            seconds = (item.end if item.end is not None else info.duration) - (item.start or 0.0)
            if seconds > self.long_seconds and item.member is None:
                return {"index": index, "long": True}
            data = item.read_bytes() if data is None else data
            sha = hashlib.sha256(data).hexdigest()
            x, sr = read_audio(where, item.start, item.end, data=data)
            decoded = time.perf_counter()
            x = resample(to_channels(x, self.channels, where), sr, self.sample_rate)
            if x.shape[1] == 0:
                raise AudioError(where, "zero-length audio after resampling")
            return {
                "index": index,
                "audio": x,
                "sha256": sha,
                "sample_rate": sr,
                "decode_s": decoded - start,
                "resample_s": time.perf_counter() - decoded,
            }
        except MemberError as err:
            return {"index": index, "error": str(err)}
        except AudioError as err:
            return {"index": index, "error": err.reason}
        except Exception as err:  # an unexpected failure must not kill the worker or the run
            return {"index": index, "error": f"unexpected {type(err).__name__}: {err}"}


def length_buckets(lengths: list[int], max_samples: int) -> list[list[int]]:
    """Positions of `lengths` grouped into length-bucketed batches: sorted by length (ties in order), each
    batch's padded size (count x longest) <= max_samples. The local engine and the Ray actors both batch so."""
    batches: list[list[int]] = []
    current: list[int] = []
    for position in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if current and (len(current) + 1) * lengths[position] > max_samples:
            batches.append(current)
            current = []
        current.append(position)
    if current:
        batches.append(current)
    return batches


def decoded_batches(pending: list[dict[str, Any]], max_samples: int) -> list[list[dict[str, Any]]]:
    """Length-bucketed batches of decoded records (see `length_buckets`)."""
    groups = length_buckets([rec["audio"].shape[1] for rec in pending], max_samples)
    return [[pending[i] for i in group] for group in groups]


def encode_long(
    path: str, start: float | None, end: float | None, codec: AudioCodec, n_q: int, chunk_seconds: float
) -> tuple[np.ndarray, float, str, int]:
    """A file over the long-file limit -> (codes [n_q, F], seconds, sha256, source rate): streamed from disk
    and encoded in chunks (bounded memory) through the codec's `long_file_streamer` (Mimi's own state) or
    with its `long_file_context` (codeclab codecs: the same codes as a whole pass; other peers: a stated
    window, codes near chunk edges may differ); a codec with neither is encoded whole. Raises AudioError
    for an unusable file (others for encoding failures)."""
    sha = sha256_file(path)
    info = audio_info(path)
    if encodes_in_chunks(codec, n_q):
        if not codec.long_file_exact:
            log.info(
                "%s: %s encodes long files in windows; codes near chunk edges may differ", path, codec.name
            )
        encoded = encode_stream(
            codec,
            stream_audio(path, codec.sample_rate, codec.channels, start, end),
            n_q=n_q,
            chunk_seconds=chunk_seconds,
        )
    else:  # unknown context: whole pass (memory grows with the file)
        log.warning("%s: %s has no bounded encoder context; encoding the long file whole", path, codec.name)
        wav = torch.as_tensor(load_audio(path, codec.sample_rate, codec.channels, start, end))
        encoded = codec.encode(wav[None].to(codec.device), n_q=n_q)
    seconds = int(encoded.audio_lengths[0]) / codec.sample_rate
    return encoded.items()[0].cpu().numpy(), seconds, sha, info.sample_rate
