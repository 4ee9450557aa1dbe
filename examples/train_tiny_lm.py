"""Train a tiny GPT on a codeclab token store, then sample audio from it.

    codeclab demo --out demo-out                      # makes demo-out/tokens (or use your own store)
    python examples/train_tiny_lm.py demo-out/tokens --steps 300 --out lm-out

Pieces used: AudioVocab (token ids, flatten pattern), TokenDataset + PackedTokenDataset (packing, shuffling,
DDP/worker sharding), collate_tokens (padding, masks, labels), and the codec recorded in the store to turn
sampled tokens back into audio.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codeclab.audio.io import write_audio
from codeclab.catalog.fingerprint import open_recorded_codec
from codeclab.codecs.base import Encoded
from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset, collate_tokens
from codeclab.tokens.store import TokenStore
from codeclab.tokens.vocab import AudioVocab


class TinyGPT(nn.Module):
    """Decoder-only transformer: token + position embeddings, pre-norm blocks with causal attention."""

    def __init__(
        self, vocab_size: int, context: int, dim: int = 128, layers: int = 2, heads: int = 4
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(context, dim)
        block = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # ids [B, L] -> logits [B, L, V]
        length = ids.shape[1]
        x = self.tokens(ids) + self.positions(torch.arange(length, device=ids.device))
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=ids.device)
        return self.head(self.norm(self.blocks(x, mask=causal, is_causal=True)))


def train(
    store: TokenStore, vocab: AudioVocab, steps: int, context: int, batch: int, seed: int
) -> tuple[TinyGPT, list[float]]:
    torch.manual_seed(seed)
    dataset = TokenDataset(store, vocab)
    packed = PackedTokenDataset(dataset, context_length=context, allow_split=True, seed=seed)
    model = TinyGPT(vocab.size, context)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    losses: list[float] = []
    epoch = 0
    while len(losses) < steps:
        packed.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            packed, batch_size=batch, collate_fn=lambda b: collate_tokens(b, vocab.pad_id)
        )
        for batch_data in loader:
            ids, labels = batch_data["input_ids"], batch_data["labels"]
            logits = model(ids[:, :-1])
            loss = F.cross_entropy(
                logits.reshape(-1, vocab.size), labels[:, 1:].reshape(-1), ignore_index=-100
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) % 50 == 0 or len(losses) == 1:
                print(
                    f"step {len(losses):5d}  loss {loss.item():.3f} nats/token ({loss.item() / math.log(2):.2f} bits)"
                )
            if len(losses) >= steps:
                break
        epoch += 1
    return model, losses


@torch.no_grad()
def sample(
    model: TinyGPT, vocab: AudioVocab, frames: int, context: int, temperature: float, seed: int
) -> torch.Tensor:
    """Sample `frames` frames in flatten order; at each step only codebook q's ids are allowed, so the
    result always decodes. Returns codes [Q, frames]."""
    gen = torch.Generator().manual_seed(seed)
    ids = [vocab.bos_id, vocab.special("audio_start")]
    n_q, k = vocab.num_codebooks, vocab.codebook_size
    for step in range(frames * n_q):
        window = torch.tensor(ids[-(context - 1) :])[None]
        logits = model(window)[0, -1] / temperature
        q = step % n_q
        allowed = logits[vocab.offset(q) : vocab.offset(q) + k]
        code = torch.multinomial(torch.softmax(allowed, -1), 1, generator=gen).item()
        ids.append(vocab.offset(q) + code)
    return vocab.from_ids(torch.tensor(ids), "flatten")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path, default=Path("lm-out"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--n-q", type=int, default=None, help="codebooks to model (default: all in the store)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the sampled audio")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    store = TokenStore(args.store)
    vocab = AudioVocab.for_store(store, n_q=args.n_q)
    print(
        f"{len(store)} items, {vocab.num_codebooks} codebooks x {vocab.codebook_size} codes, vocabulary {vocab.size}"
    )
    model, losses = train(store, vocab, args.steps, args.context, args.batch, args.seed)

    frames = max(1, round(args.seconds * float(store.metadata["frame_rate"])))
    codes = sample(model, vocab, frames, args.context, args.temperature, args.seed)
    codec = open_recorded_codec(store.metadata["codec"])
    if codes.shape[0] < codec.num_codebooks:
        print(f"decoding with the first {codes.shape[0]} of {codec.num_codebooks} codebooks")
    encoded = Encoded(codes[None], torch.tensor([frames]))
    wav = codec.decode(encoded)[0].cpu().numpy()
    args.out.mkdir(parents=True, exist_ok=True)
    write_audio(args.out / "sample.wav", wav, codec.sample_rate)
    (args.out / "losses.txt").write_text("".join(f"{x:.5f}\n" for x in losses))
    print(
        f"final loss {losses[-1]:.3f} nats/token; sample: {args.out / 'sample.wav'} ({wav.shape[-1] / codec.sample_rate:.2f} s)"
    )


if __name__ == "__main__":
    main()
