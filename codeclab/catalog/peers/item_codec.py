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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from codeclab.codecs.base import AudioCodec, Encoded, check_audio

LONG_FILE_CONTEXT_SECONDS = 2.0  # audio each side of a chunk when a peer encodes a long file in windows


class ItemCodec(nn.Module, AudioCodec):
    """A peer's model (`model`) coded item by item; `weights`: where its weights came from (None for
    random init)."""

    def __init__(self, model: Any, name: str, random_init: bool, weights: str | None) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.random_init = random_init
        self.weights = weights

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating type the model computes in (float32 unless moved with `.to(dtype)`)."""
        return next(self.model.parameters()).dtype

    def long_file_context(self) -> tuple[int, int] | None:
        """A stated window for long files: `LONG_FILE_CONTEXT_SECONDS` of audio each side of a chunk (the
        models' attention or recurrence reaches further, so `long_file_exact` is False; the measured
        agreement with a whole pass is in docs/peers.md)."""
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
    def _padded_item(self, wav: Tensor, length: int) -> Tensor:
        frames = math.ceil(length / self.hop_length)
        x = wav[:, :length]
        return torch.nn.functional.pad(x, (0, frames * self.hop_length - length))[None]

    def _encode(self, wav: Tensor, lengths: Tensor | None = None, n_q: int | None = None) -> Encoded:
        wav, lengths = check_audio(wav, lengths, self.channels)
        n_q = self.check_n_q(n_q)
        items = []
        with torch.inference_mode(), self._dtype_errors("encode"):
            for b in range(wav.shape[0]):
                length = int(lengths[b])
                x = self._padded_item(wav[b].to(self.device, self.dtype), length)
                codes = self._encode_item(x, n_q)[0, :n_q].long()
                items.append(codes)
        return Encoded.from_items(items, [int(n) for n in lengths.tolist()])

    def decode(self, encoded: Encoded | Tensor) -> Tensor:
        encoded = self.checked(encoded)
        out_lengths = self.decode_lengths(encoded)
        longest = int(out_lengths.max())
        out = torch.zeros(encoded.batch_size, self.channels, longest)
        with torch.inference_mode(), self._dtype_errors("decode"):
            for b, codes in enumerate(encoded.items()):
                wav = self._decode_item(codes[None].to(self.device)).float().cpu()
                n = min(int(out_lengths[b]), wav.shape[-1])
                out[b, :, :n] = wav[0, :, :n]
        return out

    @contextmanager
    def _dtype_errors(self, what: str) -> Iterator[None]:
        """Where a subclass turns a model's failure in a reduced precision into `UnsupportedDtype`."""
        yield

    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        raise NotImplementedError

    def _decode_item(self, codes: Tensor) -> Tensor:
        raise NotImplementedError
