"""Speech continuation with acoustic BPE and a transformers model: the steps an audio-LLM project takes.

    codeclab tokenize my-audio/ --out tokens                       # 1. a folder of audio -> codes
    codeclab export bpe tokens --vocab-size 4000 --n-q 2 --out bpe  # 2. BPE over the codes
    python examples/bpe_continuation.py tokens bpe --out cont       # 3-5. train, continue, decode

3. trains a small GPT-2 (transformers) on the store's BPE ids (TokenDataset + PackedTokenDataset with the
   AudioBPE as vocabulary); 4. takes the first `--prompt-seconds` of an item the model never trained on
   and samples a continuation with `model.generate`, masking at each step the ids that would not keep the
   codes whole frames (`AudioBPE.continuation_mask`); 5. turns the ids back into codes and decodes them
   with the codec recorded in the store: cont/prompt.wav (the prompt alone, decoded) and
   cont/continuation.wav (prompt + continuation).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from codeclab.audio.io import write_audio
from codeclab.catalog.fingerprint import open_recorded_codec
from codeclab.codecs.base import Encoded
from codeclab.tokens.bpe import AudioBPE, codes_to_text, text_to_codes
from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset, collate_tokens
from codeclab.tokens.store import TokenStore


def small_gpt(vocab_size: int, context: int, bpe: AudioBPE):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=context,
        n_embd=128,
        n_layer=2,
        n_head=4,
        bos_token_id=bpe.bos_id,
        eos_token_id=bpe.eos_id,
        pad_token_id=bpe.pad_id,
    )
    return GPT2LMHeadModel(config)


def train(model, dataset: TokenDataset, pad_id: int, steps: int, context: int, batch: int, seed: int):
    """Next-token training on packed sequences of `context` ids; returns the losses (nats per token)."""
    torch.manual_seed(seed)
    packed = PackedTokenDataset(dataset, context_length=context, allow_split=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    losses: list[float] = []
    epoch = 0
    model.train()
    while len(losses) < steps:
        packed.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            packed, batch_size=batch, collate_fn=lambda b: collate_tokens(b, pad_id)
        )
        for data in loader:
            out = model(input_ids=data["input_ids"], attention_mask=data["attention_mask"])
            logits = out.logits[:, :-1]
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), data["labels"][:, 1:].reshape(-1), ignore_index=-100
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) % 50 == 0 or len(losses) == 1:
                print(f"step {len(losses):5d}  loss {loss.item() / math.log(2):.2f} bits/token")
            if len(losses) >= steps:
                break
        epoch += 1
    model.eval()
    return losses


class WholeFrames:
    """A transformers LogitsProcessor: after `prompt_codes` codes, allow only the ids that keep the
    flatten sequence decodable (`AudioBPE.continuation_mask`)."""

    def __init__(self, bpe: AudioBPE, prompt_length: int, prompt_codes: int) -> None:
        self.bpe, self.start, self.codes = bpe, prompt_length, prompt_codes

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        new = input_ids[0, self.start :].tolist()
        codes = self.codes + (self.bpe.codes_per_token(new) if new else 0)
        allowed = torch.from_numpy(self.bpe.continuation_mask(codes))
        return scores.masked_fill(~allowed[: scores.shape[-1]], float("-inf"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", type=Path, help="token store (codeclab tokenize)")
    parser.add_argument("bpe", type=Path, help="acoustic BPE directory (codeclab export bpe)")
    parser.add_argument("--out", type=Path, default=Path("continuation-out"))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--prompt-id", default=None, help="item whose start is the prompt")
    parser.add_argument("--prompt-seconds", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the continuation")
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    store, bpe = TokenStore(args.store), AudioBPE.load(args.bpe)
    ids = store.ids()
    # the prompt: the longest of the last 20 items (--prompt-id to choose); the model never trains on it
    prompt_id = args.prompt_id or max(ids[-20:], key=lambda i: store[i].num_frames)
    train_ids = [i for i in ids if i != prompt_id]
    dataset = TokenDataset(store, vocab=bpe, n_q=bpe.n_q, ids=train_ids)
    model = small_gpt(bpe.vocab_size, args.context, bpe)
    print(
        f"{len(train_ids)} items, {bpe.n_q} codebooks, {bpe.vocab_size} ids; {model.num_parameters():,} parameters"
    )
    losses = train(model, dataset, bpe.pad_id, args.steps, args.context, args.batch, args.seed)

    frame_rate = float(store.metadata["frame_rate"])
    record = store[prompt_id]
    prompt_frames = max(1, min(record.num_frames, round(args.prompt_seconds * frame_rate)))
    prompt_codes = record.codes[: bpe.n_q, :prompt_frames]
    prompt = [bpe.bos_id, bpe.special("audio_start"), *bpe.encode(prompt_codes)]
    prompt = prompt[-(args.context // 2) :]  # leave half the context for the continuation
    wanted = round(args.seconds * frame_rate) * bpe.n_q  # codes to sample
    torch.manual_seed(args.seed)
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=True,
            temperature=args.temperature,
            max_new_tokens=min(wanted, args.context - len(prompt)),
            logits_processor=[WholeFrames(bpe, len(prompt), prompt_codes.size)],
            pad_token_id=bpe.pad_id,
        )
    sampled = out[0, len(prompt) :].tolist()
    text = codes_to_text(prompt_codes, bpe.codebook_size) + "".join(
        bpe.tokenizer.convert_ids_to_tokens([i - bpe.base_size for i in sampled])
    )
    whole = len(text) // bpe.n_q * bpe.n_q  # a last partial frame is dropped
    continuation = text_to_codes(text[:whole], bpe.n_q, bpe.codebook_size)

    codec = open_recorded_codec(store.metadata["codec"])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, codes in (("prompt", prompt_codes), ("continuation", continuation)):
        codes = torch.from_numpy(np.ascontiguousarray(codes)).long()
        wav = codec.decode(Encoded(codes[None], torch.tensor([codes.shape[-1]])))[0].cpu().numpy()
        write_audio(args.out / f"{name}.wav", wav, codec.sample_rate)
    (args.out / "losses.txt").write_text("".join(f"{x:.5f}\n" for x in losses))
    added = continuation.shape[-1] - prompt_frames
    print(
        f"final loss {losses[-1] / math.log(2):.2f} bits/token; {args.out / 'continuation.wav'}: "
        f"{prompt_frames / frame_rate:.2f} s of {prompt_id} + {added / frame_rate:.2f} s sampled"
    )


if __name__ == "__main__":
    main()
