"""Token language-model benchmark: how predictable are a codec's tokens?

The same small decoder-only transformer (the body is fixed; the embeddings and heads scale with the
vocabulary) is trained with the same seed and step budget on each token store, in two patterns:

- flatten: one stream, frame-major (t0q0 t0q1 ... t0q(Q-1) t1q0 ...), one output head;
- delay: Q parallel streams (MusicGen), the summed embeddings of the Q tokens per step, Q output heads.

The next token's codebook is fixed by the pattern, so each token is scored over the K logits of its own
codebook, from a small output head per codebook (K outputs, not the whole vocabulary): a model of
uniformly random codes then reaches exactly log2(K) bits per token, and one of constant codes 0.
`n_q` scores a store's first codebooks only; an acoustic BPE (`codeclab.tokens.bpe`) is scored on its
ids with the same body and tokens per sequence, over one head spanning its vocabulary, and its bits per
second count the audio its tokens stand for.
Reported on items held out from training (at least `held_out_percent` of the items, chosen by a fixed
hash of their ids): NLL in bits per token, bits per second of audio (the figure comparable across frame
rates and codebook counts), and per-codebook bits and perplexity, beside count-based unigram and bigram
baselines on the same items (`codeclab.eval.ngram`): the transformer's bits per second against the
better baseline's is the headline.
"""

from __future__ import annotations

import hashlib
import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from codeclab._progress import progress_task
from codeclab.eval.lm_model import LMBenchConfig, StreamLM, bpe_nll, codebook_nll
from codeclab.eval.ngram import ngram_baselines
from codeclab.eval.report import provenance, write_json, write_table
from codeclab.tokens.bpe import AudioBPE
from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset
from codeclab.tokens.store import StoreLayout, TokenStore, part_files
from codeclab.tokens.vocab import AudioVocab


def held_out_ids(ids: list[str], percent: int) -> set[str]:
    """The ceil(percent %) of `ids` (at least one, never all) first in the order of a fixed hash of the
    ids, so a split does not depend on a store's order or the machine; empty for a single id."""
    count = min(max(1, math.ceil(len(ids) * percent / 100)), len(ids) - 1)
    return set(sorted(ids, key=lambda i: (zlib.crc32(i.encode()), i))[:count])


def _split(store: TokenStore, percent: int) -> tuple[list[str], list[str]]:
    """(train ids, held-out ids) of a store, held out by `held_out_ids`."""
    ids = store.ids()
    held = held_out_ids(ids, percent)
    return [i for i in ids if i not in held], [i for i in ids if i in held]


def _sequences(
    store: TokenStore,
    vocab: AudioVocab | AudioBPE,
    ids: list[str],
    pattern: str,
    length: int,
    seed: int,
    shuffle: bool,
):
    dataset = TokenDataset(
        store, vocab, pattern=pattern, n_q=vocab.num_codebooks, markers=False, bos=False, eos=False, ids=ids
    )
    return PackedTokenDataset(
        dataset, length, allow_split=True, shuffle=shuffle, seed=seed, rank=0, world_size=1
    )


def _batches(packed: PackedTokenDataset, batch_size: int, epoch_start: int = 0):
    epoch = epoch_start
    while True:
        packed.set_epoch(epoch)
        batch = []
        for seq in packed:
            batch.append(seq)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
        epoch += 1


def _stack(batch: list[dict], streams: int) -> tuple[Tensor, Tensor]:
    ids = torch.stack([b["input_ids"] for b in batch])
    mask = torch.stack([b["attention_mask"] for b in batch]).bool()
    if ids.ndim == 2:
        ids = ids[:, None]
    return ids, mask


def store_fingerprint(store: TokenStore) -> str:
    digest = hashlib.sha256()
    index = StoreLayout(store.path).index
    files = [index] if index.is_file() else part_files(store.path)
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _train_step(model, optimizer, schedule, batch: list[dict], streams: int, vocab: AudioVocab) -> float:
    """One optimiser step on `batch`; returns its loss (nats per token)."""
    ids, mask = _stack(batch, streams)
    nll, _ = (
        bpe_nll(model, ids, mask, vocab)
        if isinstance(vocab, AudioBPE)
        else codebook_nll(model, ids, mask, vocab)
    )
    loss = nll.mean()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    return loss.item()


def baseline_rows(store_path: str | Path, cfg: LMBenchConfig, n_q: int | None = None) -> list[dict[str, Any]]:
    """The unigram and bigram rows of a store's first n_q codebooks (`codeclab.eval.ngram`), on the
    transformer's split."""
    store = TokenStore(store_path)
    n_q = n_q or store.n_q
    train_ids, held_ids = _split(store, cfg.held_out_percent)
    k, frame_rate = store.codebook_size, float(store.metadata["frame_rate"])
    result = ngram_baselines(
        [store[i].codes[:n_q].astype(np.int64) for i in train_ids],
        [store[i].codes[:n_q].astype(np.int64) for i in held_ids],
        k,
    )
    tokens = sum(store[i].num_frames for i in held_ids) * n_q
    rows = []
    for name in ("unigram", "bigram"):
        per_bits = result[f"{name}_bits"]
        rows.append(
            {
                "store": str(store_path),
                "pattern": name,
                "codec": store.metadata["codec"].get("name"),
                "n_q": n_q,
                "codebook_size": k,
                "frame_rate": frame_rate,
                "tokens_per_second": n_q * frame_rate,
                "bits_per_token": float(np.mean(per_bits)),
                "bits_per_second": float(sum(per_bits) * frame_rate),
                "log2_codebook_size": math.log2(k),
                "per_codebook_bits": per_bits,
                "per_codebook_perplexity": [2**b for b in per_bits],
                "held_out_tokens": tokens,
                "held_out_items": len(held_ids),
                "train_items": len(train_ids),
                "codebooks": result["codebooks"],
            }
        )
    return rows


def _token_setup(
    store: TokenStore,
    store_path: str | Path,
    pattern: str,
    cfg: LMBenchConfig,
    n_q: int | None,
    bpe: str | Path | None,
) -> tuple[AudioVocab | AudioBPE, int, str, int, tuple[int, int], int]:
    """(tokens, n_q, pattern label, streams, output heads (count, size), sequence length) of a run on
    the store's codes or on its BPE ids."""
    tokens: AudioVocab | AudioBPE
    if bpe is not None:
        tokens = AudioBPE.load(bpe)
        n_q, pattern, streams = tokens.n_q, f"bpe-{tokens.vocab_size}", 1
        if tokens.codebook_size != store.codebook_size or n_q > store.n_q:
            raise ValueError(f"{bpe}: made for {n_q} x {tokens.codebook_size} codes, not this store's")
        heads = (1, tokens.size)
        length = cfg.context_frames * n_q
    else:
        n_q = n_q or store.n_q
        if not 1 <= n_q <= store.n_q:
            raise ValueError(f"{store_path}: n_q must be 1..{store.n_q}, got {n_q}")
        tokens = AudioVocab.for_store(store, n_q=n_q)
        streams = 1 if pattern == "flatten" else n_q
        heads = (n_q, tokens.codebook_size)
        length = cfg.context_frames * (n_q if pattern == "flatten" else 1)
    return tokens, n_q, pattern, streams, heads, length


def _held_out_nll(
    model: nn.Module,
    sequences: Iterator[Any],
    tokens: AudioVocab | AudioBPE,
    streams: int,
    heads: int,
    cfg: LMBenchConfig,
) -> tuple[Tensor, Tensor, int]:
    """Summed negative log-likelihood (nats) and token counts per head over the held-out sequences, and
    the codes the scored tokens stand for (BPE: a token stands for several)."""
    total = torch.zeros(heads, dtype=torch.float64)
    count = torch.zeros(heads, dtype=torch.float64)
    codes_scored = 0
    evaluated = 0
    with torch.no_grad():
        for seq in sequences:
            if evaluated >= cfg.max_eval_sequences:
                break
            ids, mask = _stack([seq], streams)
            if isinstance(tokens, AudioBPE):
                nll, targets = bpe_nll(model, ids, mask, tokens)
                q = torch.zeros_like(targets)
                codes_scored += tokens.codes_per_token(targets.tolist())
            else:
                nll, q = codebook_nll(model, ids, mask, tokens)
                codes_scored += nll.numel()
            total.index_add_(0, q, nll.double())
            count.index_add_(0, q, torch.ones_like(nll, dtype=torch.float64))
            evaluated += 1
    return total, count, codes_scored


def evaluate_store(
    store_path: str | Path,
    pattern: str,
    cfg: LMBenchConfig,
    n_q: int | None = None,
    bpe: str | Path | None = None,
) -> dict[str, Any]:
    """Train and score the benchmark's transformer on a store's first `n_q` codebooks (default: all) in
    `pattern`, or on its acoustic-BPE ids (`bpe`: a `codeclab export bpe` directory; pattern is then the
    BPE's, sequences hold the same number of tokens as flatten's, and the output head spans the BPE
    vocabulary)."""
    began = time.perf_counter()
    torch.manual_seed(cfg.seed)
    store = TokenStore(store_path)
    tokens, n_q, pattern, streams, heads, length = _token_setup(store, store_path, pattern, cfg, n_q, bpe)
    sequence_pattern = tokens.pattern if isinstance(tokens, AudioBPE) else pattern
    train_ids, held_ids = _split(store, cfg.held_out_percent)
    if not train_ids or not held_ids:
        raise ValueError(f"{store_path}: need at least two items (one held out)")
    model = StreamLM(tokens.size, heads, streams, length, cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)),
    )
    batches = _batches(
        _sequences(store, tokens, train_ids, sequence_pattern, length, cfg.seed, True), cfg.batch_size
    )
    losses = []
    model.train()
    with progress_task(f"lm {Path(store_path).name} {pattern}", cfg.steps, "steps") as advance:
        for _ in range(cfg.steps):
            losses.append(_train_step(model, optimizer, schedule, next(batches), streams, tokens))
            advance()
    model.eval()
    total, count, codes_scored = _held_out_nll(
        model,
        _sequences(store, tokens, held_ids, sequence_pattern, length, cfg.seed, False),
        tokens,
        streams,
        heads[0],
        cfg,
    )
    frame_rate = float(store.metadata["frame_rate"])
    bits = float(total.sum() / math.log(2))
    seconds = codes_scored / n_q / frame_rate
    per_bits = (total / count.clamp_min(1) / math.log(2)).tolist()
    row = {
        "store": str(store_path),
        "pattern": pattern,
        "codec": store.metadata["codec"].get("name"),
        "n_q": n_q,
        "codebook_size": tokens.codebook_size,
        "frame_rate": frame_rate,
        "tokens_per_second": float(count.sum()) / seconds if seconds else float("nan"),
        "bits_per_token": float(total.sum() / count.sum().clamp_min(1) / math.log(2)),
        # codes: the sum over codebooks of bits per code, times frames per second; BPE: bits per second
        # of the audio the scored tokens stand for
        "bits_per_second": (bits / seconds if seconds else float("nan"))
        if isinstance(tokens, AudioBPE)
        else float(sum(per_bits) * frame_rate),
        "log2_codebook_size": math.log2(tokens.codebook_size),
        "per_codebook_bits": per_bits,
        "per_codebook_perplexity": [2**b for b in per_bits],
        "held_out_tokens": int(count.sum()),
        "held_out_seconds": seconds,
        "held_out_items": len(held_ids),
        "train_items": len(train_ids),
        "final_train_loss_bits": losses[-1] / math.log(2),
        "parameters": sum(p.numel() for p in model.parameters()),
        "body_parameters": sum(p.numel() for p in model.body.parameters()),
        "store_sha256": store_fingerprint(store),
        "weights_sha256": store.metadata["codec"].get("weights_sha256"),
        "wall_seconds": time.perf_counter() - began,
    }
    if isinstance(tokens, AudioBPE):
        row.update(bpe=str(bpe), bpe_vocab_size=tokens.vocab_size)
    return row


def _bpe_fits(bpe: AudioBPE, store: TokenStore) -> bool:
    """Whether `bpe` was trained on codes of the codec (weights) that made `store`."""
    info, meta = bpe.info.get("codec") or {}, store.metadata["codec"]
    return info.get("weights_sha256") == meta.get("weights_sha256") and info.get("name") == meta.get("name")


def _against(row: dict[str, Any], best: dict[str, Any], log) -> dict[str, Any]:
    """`row` with its bits per second against the better count baseline at the same n_q; logged."""
    row["vs_ngram_bits_per_second"] = row["bits_per_second"] - best["bits_per_second"]
    row["best_ngram"] = best["pattern"]
    log(
        f"{row['store']} n_q {row['n_q']} ({row['pattern']}): {row['tokens_per_second']:.1f} tokens/s, "
        f"{row['bits_per_token']:.3f} bits/token, {row['bits_per_second']:.1f} bits/s "
        f"({row['vs_ngram_bits_per_second']:+.1f} against the {best['pattern']})"
    )
    return row


def run_lm_bench(
    stores: list[str],
    out: str | Path,
    patterns=("flatten", "delay"),
    config: LMBenchConfig | None = None,
    command: list[str] | None = None,
    log=print,
    n_qs: list[int] | None = None,
    bpes: list[str] | None = None,
) -> dict[str, Any]:
    """Baselines and the transformer for each store, at each of `n_qs` (its first n codebooks; default
    all), and for each acoustic BPE of `bpes` on the store its codes came from (same codec weights)."""
    cfg = config or LMBenchConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    loaded = {directory: AudioBPE.load(directory) for directory in bpes or []}
    for store in stores:
        opened = TokenStore(store)
        full = opened.n_q
        bpe_dirs = [d for d, bpe in loaded.items() if _bpe_fits(bpe, opened)]
        counts = sorted(set(n_qs or [full]) | {loaded[d].n_q for d in bpe_dirs})
        best_at: dict[int, dict] = {}
        for n_q in counts:
            baselines = baseline_rows(store, cfg, n_q)
            best_at[n_q] = min(baselines, key=lambda r: r["bits_per_second"])
            if n_q not in (n_qs or [full]):
                continue  # only a BPE needed this count's baseline
            rows += baselines
            for row in baselines:
                log(f"{store} n_q {n_q} ({row['pattern']}): {row['bits_per_second']:.1f} bits/s")
            for pattern in patterns:
                rows.append(_against(evaluate_store(store, pattern, cfg, n_q=n_q), best_at[n_q], log))
        for directory in bpe_dirs:
            row = evaluate_store(store, "flatten", cfg, bpe=directory)
            rows.append(_against(row, best_at[row["n_q"]], log))
    report = {"provenance": provenance(command, config=asdict(cfg)), "results": rows}
    write_json(report, out / "lm.json")
    notes = [
        f"same model body for every store ({next((r['body_parameters'] for r in rows if 'body_parameters' in r), 0)} "
        f"parameters), {cfg.steps} steps, batch {cfg.batch_size}, seed {cfg.seed}; held-out items: at least "
        f"{cfg.held_out_percent} % of each store's items, by a fixed hash of their ids",
        "unigram / bigram: count baselines on the same split (add-half unigram; Witten-Bell bigram on the "
        "previous frame's code of the same codebook; nothing tuned); vs_ngram_bits_per_second: the "
        "transformer's bits per second minus the better baseline's (below 0: it predicts more than code "
        "frequencies and the previous frame do)",
        f"provenance: {report['provenance']['command']}; {report['provenance']['machine']}",
    ]
    table_rows = [
        {**r, "per_codebook_perplexity": " ".join(f"{p:.1f}" for p in r["per_codebook_perplexity"])}
        for r in rows
    ]
    write_table(
        table_rows,
        [
            "store",
            "codec",
            "pattern",
            "n_q",
            "codebook_size",
            "frame_rate",
            "tokens_per_second",
            "bits_per_token",
            "log2_codebook_size",
            "bits_per_second",
            "vs_ngram_bits_per_second",
            "held_out_items",
            "per_codebook_perplexity",
        ],
        out / "lm",
        "Token LM benchmark",
        notes,
    )
    return report
