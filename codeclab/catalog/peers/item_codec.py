"""What every model-wrapping peer shares (transformers peers, SNAC): an `nn.Module` whose one submodule is
the peer's model, exact batching by coding each item alone on its audio zero-padded to whole frames, and
the window a long file is chunked with.

The models do not promise that a padded batch gives each item its own codes (HF Mimi gives different codes
batched and single, transformers#43377; CPU kernels change rounding with the batch shape), so the adapter
encodes and decodes item by item; the cost is no batching speed-up. Subclasses implement
`_encode_item(x [1, C, T], n_q) -> [1, n_q', F]` (n_q' >= n_q) and `_decode_item(codes [1, n_q, F])`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from codeclab.codecs.base import AudioCodec, Encoded, WeightsNeeded, check_audio

LONG_FILE_CONTEXT_SECONDS = 2.0  # audio each side of a chunk when a peer encodes a long file in windows


def peer_weights_needed(name: str, hub_id: str, local: str) -> WeightsNeeded:
    """The error for a peer asked for with neither weights nor random_init, in the API's and the command
    line's words; `local` says what a local directory holds ("saved from it", "of its files")."""
    return WeightsNeeded(
        f"codec {name!r} needs pretrained weights: pass weights='{hub_id}' (a hub id; needs internet) or a "
        f"local directory {local}, or random_init=True for an untrained model (tests, speed runs)",
        f"codec {name!r} needs pretrained weights: pass --weights {hub_id} (a hub id; needs internet) or "
        "--weights DIR (a local copy), or --random-init for an untrained model (tests, speed runs)",
    )


class ItemCodec(nn.Module, AudioCodec):
    """A peer's model (`model`) coded item by item; `weights`: where its weights came from (None for
    random init)."""

    def __init__(self, model: Any, name: str, random_init: bool, weights: str | None) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.random_init = random_init
        self.weights = weights
        self.bucket_frames: tuple[int, ...] = ()

    def pad_to_buckets(self, seconds: Sequence[float] | None) -> ItemCodec:
        """Give the model only a few input lengths, for a `torch.compile`d model that would otherwise
        recompile for each new one: every item is zero-padded to the shortest bucket it fits (`seconds`,
        e.g. (2, 5, 10, 30)), a longer one to a multiple of the longest, and its codes and audio are cut
        back to its own length. Exact where the model cannot see the padding (causal peers); the others'
        agreement is measured in docs/peers.md. None or () turns it off. Returns the codec."""
        frames = sorted({math.ceil(float(s) * self.frame_rate) for s in seconds or ()})
        if frames and frames[0] < 1:
            raise ValueError(f"bucket lengths must be positive seconds, got {list(seconds or ())}")
        self.bucket_frames = tuple(frames)
        return self

    def bucket(self, frames: int) -> int:
        """The frame count an item of `frames` frames is padded to (itself when buckets are off)."""
        for size in self.bucket_frames:
            if size >= frames:
                return size
        top = self.bucket_frames[-1] if self.bucket_frames else 1
        return math.ceil(frames / top) * top

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating type the model computes in (float32 unless moved with `.to(dtype)`)."""
        return next(self.model.parameters()).dtype

    def long_file_context(self) -> tuple[int, int] | None:
        """A stated window for long files: `LONG_FILE_CONTEXT_SECONDS` of audio each side of a chunk. The
        models' attention or recurrence reaches further, so a window is not exact (a peer with a
        `long_file_streamer` is chunked through it instead); the measured agreement with a whole pass is in
        docs/peers.md."""
        context = round(LONG_FILE_CONTEXT_SECONDS * self.sample_rate)
        return context, context

    def describe(self) -> dict:
        info = super().describe()
        info.update(
            random_init=self.random_init,
            weights=self.weights or ("random init" if self.random_init else None),
        )
        return info

    # -- contract --------------------------------------------------------------------------------------
    extra_hop = 0  # hops of zeros a model needs after the item's frames to code them all (NeuCodec: 1)

    def _padded_item(self, wav: Tensor, length: int) -> Tensor:
        """wav [C, T] -> [1, C, (bucket(frames) + extra_hop) * hop]: the item's samples, then zeros."""
        frames = self.bucket(math.ceil(length / self.hop_length)) + self.extra_hop
        return torch.nn.functional.pad(wav[:, :length], (0, frames * self.hop_length - length))[None]

    def _encode(self, wav: Tensor, lengths: Tensor | None = None, n_q: int | None = None) -> Encoded:
        wav, lengths = check_audio(wav, lengths, self.channels)
        n_q = self.check_n_q(n_q)
        items = []
        with torch.inference_mode(), self._dtype_errors("encode"):
            for b in range(wav.shape[0]):
                length = int(lengths[b])
                x = self._padded_item(wav[b].to(self.device, self.dtype), length)
                frames = math.ceil(length / self.hop_length)
                items.append(self._encode_padded(x, n_q, frames)[0, :n_q, :frames].long())
        return Encoded.from_items(items, [int(n) for n in lengths.tolist()])

    def decode(self, encoded: Encoded | Tensor) -> Tensor:
        return self._decode_items(encoded, self._decode_padded, 1.0)

    def _decode_items(
        self, encoded: Encoded | Tensor, decode_item: Callable[[Tensor, int], Tensor], rate_ratio: float
    ) -> Tensor:
        """Each item's codes (padded to its bucket) through `decode_item(codes [1, n_q, bucket], frames)`
        -> [B, C, T'], T' the item's audio length times `rate_ratio` (the output rate over the input
        rate), zero after each item."""
        encoded = self.checked(encoded)
        out_lengths = [math.ceil(int(n) * rate_ratio) for n in self.decode_lengths(encoded).tolist()]
        out = torch.zeros(encoded.batch_size, self.channels, max(out_lengths))
        with torch.inference_mode(), self._dtype_errors("decode"):
            for b, codes in enumerate(encoded.items()):
                frames = codes.shape[-1]
                codes = torch.nn.functional.pad(codes, (0, self.bucket(frames) - frames))
                wav = decode_item(codes[None].to(self.device), frames).float().cpu()
                n = min(out_lengths[b], wav.shape[-1])
                out[b, :, :n] = wav[0, :, :n]
        return out

    @contextmanager
    def _dtype_errors(self, what: str) -> Iterator[None]:
        """Where a subclass turns a model's failure in a reduced precision into `UnsupportedDtype`."""
        yield

    def _encode_padded(self, x: Tensor, n_q: int, frames: int) -> Tensor:
        """x [1, C, bucket * hop] holding an item of `frames` frames -> codes [1, n_q', >= frames]; a model
        that can mask its bucket padding overrides this."""
        return self._encode_item(x, n_q)

    def _decode_padded(self, codes: Tensor, frames: int) -> Tensor:
        """codes [1, n_q, bucket] of an item of `frames` frames -> audio [1, C, >= frames * hop]; a model
        that can mask its bucket padding overrides this."""
        return self._decode_item(codes)

    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        raise NotImplementedError

    def _decode_item(self, codes: Tensor) -> Tensor:
        raise NotImplementedError


class ItemLongFileStream:
    """A long file through a peer's model with state carried from chunk to chunk (a causal peer's
    `long_file_streamer`). Subclasses implement `_codes(x [1, C, n]) -> codes [1, n_q', n / hop]`."""

    def __init__(self, codec: ItemCodec, n_q: int) -> None:
        self.codec, self.n_q = codec, n_q

    def encode(self, x: Tensor) -> Tensor:
        """x [C, n], n whole frames -> codes [n_q, n / hop] (int64, CPU), continuing the previous call."""
        with torch.inference_mode():
            codes = self._codes(x[None].to(self.codec.device, self.codec.dtype))
        return codes[0, : self.n_q].long().cpu()

    def _codes(self, x: Tensor) -> Tensor:
        raise NotImplementedError
