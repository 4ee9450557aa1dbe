"""The token-LM benchmark's model: a small causal transformer over parallel token streams with one
output head per codebook, and the negative log-likelihood of held-out tokens under it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeclab.tokens.bpe import AudioBPE
from codeclab.tokens.vocab import AudioVocab


@dataclass
class LMBenchConfig:
    dim: int = 128
    layers: int = 2
    heads: int = 4
    context_frames: int = 64  # frames per training sequence (x Q tokens for flatten)
    steps: int = 400
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    held_out_percent: int = 10
    max_eval_sequences: int = 256


class CodebookHeads(nn.Module):
    """One K-way output head per codebook: hidden h [N, D] and codebooks q [N] -> logits [N, K], each row
    from its own codebook's head (Q x fewer output FLOPs than a head over the whole vocabulary)."""

    def __init__(self, num_codebooks: int, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_codebooks, codebook_size, dim) * dim**-0.5)
        self.bias = nn.Parameter(torch.zeros(num_codebooks, codebook_size))

    def forward(self, h: Tensor, q: Tensor) -> Tensor:
        out = h.new_zeros(h.shape[0], self.weight.shape[1])
        for c in q.unique().tolist():
            rows = (q == c).nonzero(as_tuple=True)[0]
            out = out.index_put((rows,), F.linear(h[rows], self.weight[c], self.bias[c]))
        return out


class StreamLM(nn.Module):
    """Causal transformer over S parallel streams of tokens: ids [B, S, L] -> hidden [B, L, D]; `heads`
    turn a hidden state into the K logits of the codebook its next token belongs to."""

    def __init__(
        self, vocab_size: int, heads: tuple[int, int], streams: int, length: int, cfg: LMBenchConfig
    ) -> None:
        """heads: (groups, size) of the output heads: (Q, K) for codes, (1, vocabulary) for BPE ids."""
        super().__init__()
        self.embed = nn.ModuleList(nn.Embedding(vocab_size, cfg.dim) for _ in range(streams))
        self.position = nn.Embedding(length, cfg.dim)
        layer = nn.TransformerEncoderLayer(
            cfg.dim, cfg.heads, 4 * cfg.dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.body = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.heads = CodebookHeads(heads[0], heads[1], cfg.dim)

    def forward(self, ids: Tensor) -> Tensor:
        length = ids.shape[-1]
        x = sum(embed(ids[:, s]) for s, embed in enumerate(self.embed)) + self.position(
            torch.arange(length, device=ids.device)
        )
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=ids.device)
        return self.norm(self.body(x, mask=mask, is_causal=True))


def codebook_nll(model: StreamLM, ids: Tensor, mask: Tensor, vocab: AudioVocab) -> tuple[Tensor, Tensor]:
    """Per-token NLL (nats) of each next token over the K codes of its codebook; targets that are not
    codes (padding, delay pads) are excluded. ids [B, S, L], mask [B, L] -> (nll [M], codebook [M])."""
    h = model(ids[..., :-1])  # [B, L-1, D]
    targets = ids[..., 1:].masked_fill(~mask[:, None, 1:], vocab.pad_id)  # [B, S, L-1]
    hidden = h[:, None].expand(-1, targets.shape[1], -1, -1).reshape(-1, h.shape[-1])
    targets = targets.reshape(-1)
    keep = vocab.is_audio(targets)
    hidden, targets = hidden[keep], targets[keep]
    q = vocab.codebook_of(targets)
    logits = model.heads(hidden, q)
    nll = F.cross_entropy(logits, targets - vocab.audio_offset - q * vocab.codebook_size, reduction="none")
    return nll, q


def bpe_nll(model: StreamLM, ids: Tensor, mask: Tensor, bpe: AudioBPE) -> tuple[Tensor, Tensor]:
    """Per-token NLL (nats) of each next BPE id over the whole BPE vocabulary; padding and special targets
    are excluded. ids [B, 1, L], mask [B, L] -> (nll [M], target ids [M])."""
    h = model(ids[..., :-1])[mask[:, 1:]]
    targets = ids[:, 0, 1:][mask[:, 1:]]
    keep = targets >= bpe.first_audio_id
    h, targets = h[keep], targets[keep]
    logits = model.heads(h, torch.zeros_like(targets))
    return F.cross_entropy(logits, targets, reduction="none"), targets
