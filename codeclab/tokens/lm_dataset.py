"""Datasets that feed a token store to language-model training.

- `TokenDataset` (map-style): item i -> its token sequence (a pattern of `AudioVocab`), optionally with the
  item's text (from the manifest) before or after the audio.
- `PackedTokenDataset` (iterable): seeded shuffling per epoch, sharding by DDP rank and DataLoader worker
  (every item exactly once per epoch across all of them), and packing into sequences of `context_length`.
  An item is never split across sequences unless `allow_split=True`.
- `collate_tokens`: pads a batch and adds `attention_mask` and `labels` (-100 on padding).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from codeclab.tokens.store import TokenStore
from codeclab.tokens.vocab import FLAT_PATTERNS, AudioVocab, VocabError

log = logging.getLogger("codeclab.data")


class TokenDataset(torch.utils.data.Dataset):
    """Map-style dataset over a token store: index i -> {"id", "input_ids", "num_frames"}.

    input_ids: [L] for flat patterns (with bos, audio_start ... audio_end, eos by default), [Q, L] for
    parallel / delay. text_tokenizer: a callable str -> list of base-vocabulary ids; when given, items with
    text get it before (TTS-style) or after (ASR-style) their audio.
    """

    def __init__(
        self,
        store: TokenStore | str,
        vocab: AudioVocab | None = None,
        pattern: str = "flatten",
        n_q: int | None = None,
        markers: bool = True,
        bos: bool = True,
        eos: bool = True,
        text_tokenizer: Callable[[str], list[int]] | None = None,
        text_position: str = "before",
        ids: list[str] | None = None,
    ) -> None:
        self.store = store if isinstance(store, TokenStore) else TokenStore(store)
        self.n_q = n_q or self.store.n_q
        if self.n_q > self.store.n_q:
            raise ValueError(f"n_q={self.n_q} but the store holds {self.store.n_q} codebooks")
        self.vocab = vocab or AudioVocab.for_store(self.store, n_q=self.n_q)
        if self.vocab.codebook_size < self.store.codebook_size or self.vocab.num_codebooks < self.n_q:
            raise VocabError("the vocabulary is smaller than the store's codes")
        if pattern not in FLAT_PATTERNS:  # parallel / delay streams carry no framing tokens
            if text_tokenizer is not None:
                raise VocabError(f"text interleaving needs a flat pattern, not {pattern!r}")
            markers = bos = eos = False
        if text_position not in ("before", "after"):
            raise ValueError("text_position must be 'before' or 'after'")
        self.pattern, self.markers, self.bos, self.eos = pattern, markers, bos, eos
        self.text_tokenizer, self.text_position = text_tokenizer, text_position
        self.ids = list(ids) if ids is not None else self.store.ids()

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self, record) -> Tensor:
        codes = record.tensor()[: self.n_q]
        if self.pattern not in FLAT_PATTERNS:
            return self.vocab.to_ids(codes, self.pattern)
        audio = self.vocab.to_ids(codes, self.pattern, markers=self.markers)
        parts = []
        if self.bos:
            parts.append(torch.tensor([self.vocab.bos_id]))
        text = None
        if self.text_tokenizer is not None and record.text:
            text = torch.tensor(list(self.text_tokenizer(record.text)), dtype=torch.long)
            if text.numel() and int(text.max()) >= self.vocab.base_size:
                raise VocabError("text token ids must lie inside the base vocabulary (base_size)")
        parts += [text, audio] if self.text_position == "before" else [audio, text]
        if self.eos:
            parts.append(torch.tensor([self.vocab.eos_id]))
        return torch.cat([p for p in parts if p is not None])

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.store[self.ids[index]]
        return {"id": record.id, "input_ids": self.tokens(record), "num_frames": record.num_frames}


def distributed_position() -> tuple[int, int]:
    """(rank, world size) from torch.distributed if initialised, else from RANK / WORLD_SIZE, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard_order(
    n: int, epoch: int, seed: int, shuffle: bool, rank: int, world: int, worker: int, workers: int
) -> list[int]:
    """The item indices that (rank, worker) reads in `epoch`: a seeded permutation dealt round-robin over
    world * workers consumers, so together they read every index exactly once."""
    order = (
        torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        if shuffle
        else torch.arange(n)
    )
    consumer, consumers = rank * workers + worker, world * workers
    return order[consumer::consumers].tolist()


class PackedTokenDataset(torch.utils.data.IterableDataset):
    """Sequences of exactly `context_length` steps packed from a `TokenDataset`.

    Yields {"input_ids" [L] or [Q, L], "attention_mask" [L], "ids": items in the sequence, "spans":
    (start, stop) of each in the sequence}. The last sequence of a consumer is padded (mask 0) unless
    `drop_last`. Items longer than the context are skipped (and counted) unless `allow_split`.

    shuffle: a fresh seeded order each epoch (`set_epoch`). With `shuffle_window=None` it is a global
    permutation: fast while the store's decoded parts fit its cache (`TokenStore(cache_mb=...)`). With
    `shuffle_window=N` the parts are shuffled and items mixed within N parts at a time
    (`TokenStore.shuffled_ids`): memory stays at N parts for stores of any size.
    """

    def __init__(
        self,
        dataset: TokenDataset,
        context_length: int,
        allow_split: bool = False,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
        shuffle_window: int | None = None,
    ) -> None:
        if context_length < 2:
            raise ValueError("context_length must be at least 2")
        self.dataset, self.context_length, self.allow_split = dataset, context_length, allow_split
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        if shuffle_window is not None and shuffle_window < 1:
            raise ValueError(f"shuffle_window must be at least 1 (or None), got {shuffle_window}")
        self.shuffle_window = shuffle_window
        default_rank, default_world = distributed_position()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world size {self.world_size}")
        self.epoch = 0
        self.skipped_long = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def item_indices(self) -> list[int]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.shuffle and self.shuffle_window is not None:
            position = {item_id: n for n, item_id in enumerate(self.dataset.ids)}
            store_order = self.dataset.store.shuffled_ids(self.seed + self.epoch, self.shuffle_window)
            order = [position[item_id] for item_id in store_order if item_id in position]
            consumer, consumers = self.rank * workers + worker, self.world_size * workers
            return order[consumer::consumers]
        return shard_order(
            len(self.dataset),
            self.epoch,
            self.seed,
            self.shuffle,
            self.rank,
            self.world_size,
            worker,
            workers,
        )

    def _emit(
        self, pieces: list[Tensor], ids: list[str], spans: list[tuple[int, int]], length: int
    ) -> dict[str, Any]:
        seq = torch.cat(pieces, dim=-1)
        mask = torch.zeros(self.context_length, dtype=torch.long)
        mask[:length] = 1
        if length < self.context_length:
            shape = (*seq.shape[:-1], self.context_length - length)
            seq = torch.cat([seq, torch.full(shape, self.dataset.vocab.pad_id, dtype=torch.long)], dim=-1)
        return {"input_ids": seq, "attention_mask": mask, "ids": ids, "spans": spans}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        length, pieces, ids, spans = 0, [], [], []
        for index in self.item_indices():
            item = self.dataset[index]
            tokens = item["input_ids"]
            n = tokens.shape[-1]
            if n > self.context_length and not self.allow_split:
                self.skipped_long += 1
                log.warning(
                    "%s: %d tokens exceed context_length %d; skipped (allow_split=True packs it in pieces)",
                    item["id"],
                    n,
                    self.context_length,
                )
                continue
            if not self.allow_split and length + n > self.context_length:
                yield self._emit(pieces, ids, spans, length)
                length, pieces, ids, spans = 0, [], [], []
            start = 0
            while start < n:
                take = min(n - start, self.context_length - length)
                pieces.append(tokens[..., start : start + take])
                ids.append(item["id"])
                spans.append((length, length + take))
                length += take
                start += take
                if length == self.context_length:
                    yield self._emit(pieces, ids, spans, length)
                    length, pieces, ids, spans = 0, [], [], []
        if length and not self.drop_last:
            yield self._emit(pieces, ids, spans, length)


def collate_tokens(batch: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Pad input_ids ([L] or [Q, L] each) to the longest; attention_mask [B, L]; labels = input_ids with
    -100 where the mask is 0."""
    if not batch:
        raise ValueError("empty batch")
    longest = max(item["input_ids"].shape[-1] for item in batch)
    first = batch[0]["input_ids"]
    input_ids = torch.full((len(batch), *first.shape[:-1], longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(batch), longest, dtype=torch.long)
    for i, item in enumerate(batch):
        tokens = item["input_ids"]
        n = tokens.shape[-1]
        input_ids[i, ..., :n] = tokens
        item_mask = item.get("attention_mask")
        mask[i, :n] = 1 if item_mask is None else item_mask[:n]
    labels = input_ids.clone()
    labels[(mask == 0).unsqueeze(1).expand_as(labels) if labels.ndim == 3 else mask == 0] = -100
    out: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
    out["ids"] = [item.get("ids", item.get("id")) for item in batch]
    return out
