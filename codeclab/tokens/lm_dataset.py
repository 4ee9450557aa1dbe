"""Datasets that feed token stores (or any stream of codes) to language-model training.

- `SequenceFramer`: codes (+ text) -> one sequence of a pattern of `AudioVocab` (bos, text, audio_start,
  codes, audio_end, eos) and its loss mask by role: all tokens, the audio only (TTS-style data) or the
  text only (ASR-style data).
- `TokenDataset` (map-style): item i of a store -> its framed sequence.
- `IterableTokenDataset`: the same from any iterable of records (a Hugging Face streaming dataset of a
  store or an export, WebDataset samples, a generator), dealt over DDP ranks and DataLoader workers.
- `PackedTokenDataset` (iterable): seeded shuffling per epoch, sharding by DDP rank and DataLoader worker
  (every item exactly once per epoch across all of them), and packing into sequences of `context_length`
  with `position_ids` that restart at every item (document boundaries for varlen attention). An item is
  never split across sequences unless `allow_split=True`.
- `collate_tokens`: pads a batch and adds `attention_mask`, `position_ids` and `labels` (-100 on padding
  and on tokens outside the loss mask).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codeclab.tokens.store import TokenStore
from codeclab.tokens.vocab import FLAT_PATTERNS, AudioVocab, VocabError

log = logging.getLogger("codeclab.data")

LOSS_ON = ("all", "audio", "text")


class SequenceFramer:
    """codes [Q, T] and an optional text -> (input_ids [L] or [Q, L], loss_mask [L] bool).

    loss_on: "all" (every token), "audio" (audio_start, codes, audio_end and eos: TTS-style data, text
    before the audio is context only) or "text" (the text and eos: ASR-style data, the audio is context)."""

    def __init__(
        self,
        vocab,
        pattern: str = "flatten",
        n_q: int = 8,
        markers: bool = True,
        bos: bool = True,
        eos: bool = True,
        text_tokenizer: Callable[[str], list[int]] | None = None,
        text_position: str = "before",
        loss_on: str = "all",
    ) -> None:
        if pattern not in FLAT_PATTERNS:  # parallel / delay streams carry no framing tokens
            if text_tokenizer is not None:
                raise VocabError(f"text interleaving needs a flat pattern, not {pattern!r}")
            markers = bos = eos = False
        if text_position not in ("before", "after"):
            raise ValueError("text_position must be 'before' or 'after'")
        if loss_on not in LOSS_ON:
            raise ValueError(f"loss_on must be one of {', '.join(LOSS_ON)}, got {loss_on!r}")
        if loss_on == "text" and text_tokenizer is None:
            raise ValueError("loss_on='text' needs a text_tokenizer (the loss would cover nothing)")
        self.vocab, self.pattern, self.n_q = vocab, pattern, n_q
        self.markers, self.bos, self.eos = markers, bos, eos
        self.text_tokenizer, self.text_position, self.loss_on = text_tokenizer, text_position, loss_on

    def frame(self, codes: Tensor, text: str | None = None) -> tuple[Tensor, Tensor]:
        codes = torch.as_tensor(codes)[: self.n_q]
        if self.pattern not in FLAT_PATTERNS:
            ids = self.vocab.to_ids(codes, self.pattern)
            return ids, torch.ones(ids.shape[-1], dtype=torch.bool)
        audio = self.vocab.to_ids(codes, self.pattern, markers=self.markers)
        text_ids = None
        if self.text_tokenizer is not None and text:
            text_ids = torch.tensor(list(self.text_tokenizer(text)), dtype=torch.long)
            if text_ids.numel() and int(text_ids.max()) >= self.vocab.base_size:
                raise VocabError("text token ids must lie inside the base vocabulary (base_size)")
        parts: list[tuple[Tensor, str]] = []
        if self.bos:
            parts.append((torch.tensor([self.vocab.bos_id]), "bos"))
        body = [(text_ids, "text"), (audio, "audio")]
        parts += body if self.text_position == "before" else body[::-1]
        if self.eos:
            parts.append((torch.tensor([self.vocab.eos_id]), "eos"))
        parts = [(p, role) for p, role in parts if p is not None]
        ids = torch.cat([p for p, _ in parts])
        counted = {"all": {"bos", "text", "audio", "eos"}, "audio": {"audio", "eos"}, "text": {"text", "eos"}}
        mask = torch.cat([torch.full((len(p),), role in counted[self.loss_on]) for p, role in parts])
        return ids, mask


def _vocab_for(store: TokenStore, vocab, n_q: int | None):
    n_q = n_q or store.n_q
    if n_q > store.n_q:
        raise ValueError(f"n_q={n_q} but the store holds {store.n_q} codebooks")
    vocab = vocab or AudioVocab.for_store(store, n_q=n_q)
    if vocab.codebook_size < store.codebook_size:
        raise VocabError(
            f"the vocabulary has {vocab.codebook_size} codes per codebook; {store.path} holds codes up to "
            f"{store.codebook_size - 1}: build the vocabulary for this store (AudioVocab.for_store(store))"
        )
    if vocab.num_codebooks < n_q:
        raise VocabError(
            f"the vocabulary holds {vocab.num_codebooks} codebooks and {store.path} {store.n_q}: pass "
            f"n_q={vocab.num_codebooks} to read the first {vocab.num_codebooks} (TokenDataset(store, vocab, "
            f"n_q={vocab.num_codebooks}))"
        )
    return vocab, n_q


class TokenDataset(torch.utils.data.Dataset):
    """Map-style dataset over a token store: index i -> {"id", "input_ids", "loss_mask", "num_frames"}.

    input_ids: [L] for flat patterns (with bos, audio_start ... audio_end, eos by default), [Q, L] for
    parallel / delay. text_tokenizer: a callable str -> list of base-vocabulary ids; when given, items with
    text get it before (TTS-style) or after (ASR-style) their audio. loss_on: see `SequenceFramer`.
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
        loss_on: str = "all",
    ) -> None:
        self.store = store if isinstance(store, TokenStore) else TokenStore(store)
        self.vocab, self.n_q = _vocab_for(self.store, vocab, n_q)
        self.framer = SequenceFramer(
            self.vocab, pattern, self.n_q, markers, bos, eos, text_tokenizer, text_position, loss_on
        )
        self.pattern = pattern
        self.ids = list(ids) if ids is not None else self.store.ids()

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self, record) -> Tensor:
        return self.framer.frame(record.tensor(), record.text)[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.store[self.ids[index]]
        ids, mask = self.framer.frame(record.tensor(), record.text)
        return {"id": record.id, "input_ids": ids, "loss_mask": mask, "num_frames": record.num_frames}


class IterableTokenDataset(torch.utils.data.IterableDataset):
    """Framed sequences from any iterable of records: `TokenRecord`s, or dicts with "codes" ([Q][T]
    lists or arrays) and optional "id" and "text" / a "json" dict holding them (a Hugging Face streaming
    dataset of a store or an export, WebDataset samples of `codeclab export webdataset` decoded with
    `.decode()`). Item k goes to consumer k % (world size x workers), so each item is read by one
    consumer; shuffle upstream (e.g. `datasets.IterableDataset.shuffle(buffer_size=...)`)."""

    def __init__(
        self,
        source: Iterable[Any],
        vocab,
        pattern: str = "flatten",
        n_q: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        **framing: Any,
    ) -> None:
        self.source, self.vocab = source, vocab
        self.n_q = n_q or vocab.num_codebooks
        self.framer = SequenceFramer(vocab, pattern, self.n_q, **framing)
        default_rank, default_world = distributed_position()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        consumer, consumers = self.rank * workers + worker, self.world_size * workers
        for k, record in enumerate(self.source):
            if k % consumers != consumer:
                continue
            item_id, codes, text = _record_fields(record, k)
            if codes.shape[0] < self.n_q:
                raise VocabError(f"{item_id}: {codes.shape[0]} codebooks, the dataset reads {self.n_q}")
            ids, mask = self.framer.frame(codes, text)
            yield {"id": item_id, "input_ids": ids, "loss_mask": mask, "num_frames": codes.shape[1]}


def _record_fields(record: Any, k: int) -> tuple[str, Tensor, str | None]:
    """(id, codes [Q, T] int64, text) of a TokenRecord or a dict-like row."""
    if hasattr(record, "codes") and not isinstance(record, dict):
        return record.id, torch.as_tensor(np.asarray(record.codes, dtype=np.int64)), record.text
    meta = record.get("json") if isinstance(record.get("json"), dict) else {}
    codes = record.get("codes", record.get("codes.npy"))
    if codes is None:
        raise ValueError(f"record {k}: no 'codes' (or 'codes.npy') field")
    item_id = record.get("id", meta.get("id", f"#{k}"))
    text = record.get("text", meta.get("text"))
    return str(item_id), torch.as_tensor(np.asarray(codes, dtype=np.int64)), text


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
    """Sequences of exactly `context_length` steps packed from a `TokenDataset` (or an
    `IterableTokenDataset`, which deals its own items over consumers and is read in its own order).

    Yields {"input_ids" [L] or [Q, L], "attention_mask" [L], "loss_mask" [L] (the items' loss masks by
    role), "position_ids" [L] (0, 1, ... restarting at every item: document boundaries for varlen /
    flash attention, as transformers' DataCollatorWithFlattening gives them), "ids": items in the sequence,
    "spans": (start, stop) of each in the sequence}. The last sequence of a consumer is padded (mask 0)
    unless `drop_last`. Items longer than the context are skipped (and counted) unless `allow_split`.

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
        self,
        pieces: list[Tensor],
        masks: list[Tensor],
        ids: list[str],
        spans: list[tuple[int, int]],
        offsets: list[int],
        length: int,
    ) -> dict[str, Any]:
        seq = torch.cat(pieces, dim=-1)
        loss_mask = torch.zeros(self.context_length, dtype=torch.bool)
        loss_mask[:length] = torch.cat(masks)
        mask = torch.zeros(self.context_length, dtype=torch.long)
        mask[:length] = 1
        positions = torch.zeros(self.context_length, dtype=torch.long)
        for (start, stop), offset in zip(spans, offsets):
            positions[start:stop] = torch.arange(offset, offset + stop - start)
        if length < self.context_length:
            shape = (*seq.shape[:-1], self.context_length - length)
            seq = torch.cat([seq, torch.full(shape, self.dataset.vocab.pad_id, dtype=torch.long)], dim=-1)
        return {
            "input_ids": seq,
            "attention_mask": mask,
            "loss_mask": loss_mask,
            "position_ids": positions,
            "ids": ids,
            "spans": spans,
        }

    def _items(self) -> Iterator[dict[str, Any]]:
        if isinstance(self.dataset, IterableTokenDataset):
            yield from self.dataset
            return
        for index in self.item_indices():
            yield self.dataset[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        length = 0
        pieces: list[Any] = []
        masks: list[Any] = []
        ids: list[str] = []
        spans: list[Any] = []
        offsets: list[int] = []  # each piece's first position inside its item (split items)
        for item in self._items():
            tokens = item["input_ids"]
            loss = item.get("loss_mask")
            loss = torch.ones(tokens.shape[-1], dtype=torch.bool) if loss is None else loss
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
                yield self._emit(pieces, masks, ids, spans, offsets, length)
                length, pieces, masks, ids, spans, offsets = 0, [], [], [], [], []
            start = 0
            while start < n:
                take = min(n - start, self.context_length - length)
                pieces.append(tokens[..., start : start + take])
                masks.append(loss[start : start + take])
                ids.append(item["id"])
                spans.append((length, length + take))
                offsets.append(start)
                length += take
                start += take
                if length == self.context_length:
                    yield self._emit(pieces, masks, ids, spans, offsets, length)
                    length, pieces, masks, ids, spans, offsets = 0, [], [], [], [], []
        if length and not self.drop_last:
            yield self._emit(pieces, masks, ids, spans, offsets, length)


def collate_tokens(batch: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Pad input_ids ([L] or [Q, L] each) to the longest; attention_mask [B, L]; position_ids [B, L] (the
    items' own, restarting at each packed item, else 0, 1, ...); labels = input_ids with -100 where the
    attention mask is 0 or the item's loss_mask is False (text of TTS-style data, audio of ASR-style)."""
    if not batch:
        raise ValueError("empty batch")
    longest = max(item["input_ids"].shape[-1] for item in batch)
    first = batch[0]["input_ids"]
    input_ids = torch.full((len(batch), *first.shape[:-1], longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(batch), longest, dtype=torch.long)
    counted = torch.zeros(len(batch), longest, dtype=torch.bool)
    positions = torch.zeros(len(batch), longest, dtype=torch.long)
    for i, item in enumerate(batch):
        tokens = item["input_ids"]
        n = tokens.shape[-1]
        input_ids[i, ..., :n] = tokens
        item_mask = item.get("attention_mask")
        mask[i, :n] = 1 if item_mask is None else item_mask[:n]
        loss = item.get("loss_mask")
        counted[i, :n] = True if loss is None else loss[:n]
        own = item.get("position_ids")
        positions[i, :n] = torch.arange(n) if own is None else own[:n]
    labels = input_ids.clone()
    ignored = (mask == 0) | ~counted
    labels[ignored.unsqueeze(1).expand_as(labels) if labels.ndim == 3 else ignored] = -100
    out: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": mask,
        "position_ids": positions,
        "labels": labels,
    }
    out["ids"] = [item.get("ids", item.get("id")) for item in batch]
    return out
