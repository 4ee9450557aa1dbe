"""Teach a pretrained causal LM to speak codes: extend its tokenizer and embeddings, then train on audio.

    python examples/extend_pretrained_lm.py tokens/ --lm path/to/causal-lm --out lm-audio [--steps 200]
    python examples/extend_pretrained_lm.py tokens/ --make-tiny-lm tiny-lm --out lm-audio   # offline stand-in

1. `codeclab.tokens.export.export_hf_tokenizer` appends the audio tokens (specials, then one per codebook
   and code) after the LM tokenizer's own ids, so text keeps its ids.
2. `model.resize_token_embeddings(len(tokenizer), mean_resizing=True)` grows the input (and tied output)
   embeddings. The new rows start from the mean of the old ones plus noise of their covariance
   (transformers' mean_resizing): the model's first predictions over the new tokens match its average
   token instead of random vectors, so early losses stay sane. The old rows are unchanged.
3. TTS-style data: each item's text before its audio, loss on the audio only (`loss_on="audio"`), packed
   into fixed-length sequences whose `position_ids` restart at every item.

`--make-tiny-lm DIR` writes a 2-layer GPT-2 with a byte-level BPE tokenizer trained here, standing in for
a downloaded model on a machine without the Hub.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def make_tiny_lm(directory: Path) -> Path:
    """A small GPT-2 and its tokenizer, saved with save_pretrained (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["a small model that reads words and later audio codes"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.save_pretrained(directory)
    config = GPT2Config(vocab_size=len(fast), n_positions=1024, n_embd=64, n_layer=2, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codeclab.tokens import TokenStore
    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset, collate_tokens

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--lm", type=Path, help="a local causal LM directory (model + tokenizer)")
    parser.add_argument("--make-tiny-lm", type=Path, help="write a tiny GPT-2 there and use it")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-q", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--context", type=int, default=512)
    args = parser.parse_args()
    lm = make_tiny_lm(args.make_tiny_lm) if args.make_tiny_lm else args.lm
    if lm is None:
        parser.error("give --lm DIR or --make-tiny-lm DIR")
    store = TokenStore(args.store)
    meta = {"codec": store.metadata["codec"], "frame_rate": store.metadata["frame_rate"]}
    vocab = export_hf_tokenizer(
        lm, args.out, args.n_q, store.codebook_size, meta
    )  # tokenizer + audio_vocab.json
    tokenizer = AutoTokenizer.from_pretrained(args.out)
    model = AutoModelForCausalLM.from_pretrained(lm)
    old_rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    print(
        f"embeddings: {old_rows} -> {model.get_input_embeddings().weight.shape[0]} rows (new rows: mean-initialised)"
    )

    def text_ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    data = TokenDataset(
        store, vocab, n_q=args.n_q, text_tokenizer=text_ids, text_position="before", loss_on="audio"
    )
    packed = PackedTokenDataset(data, args.context, allow_split=True, seed=0)
    loader = torch.utils.data.DataLoader(
        packed, batch_size=4, collate_fn=lambda b: collate_tokens(b, vocab.pad_id)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    step, epoch = 0, 0
    while step < args.steps:
        packed.set_epoch(epoch)
        for batch in loader:
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"],
                labels=batch["labels"],
            )
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0 or step == 1 or step == args.steps:
                print(f"step {step}: loss {out.loss.item():.3f} (audio tokens only)")
            if step == args.steps:
                break
        epoch += 1
    model.save_pretrained(args.out)
    print(f"{args.out}: the extended tokenizer, audio_vocab.json and the model")


if __name__ == "__main__":
    main()
