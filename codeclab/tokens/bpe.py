"""Acoustic BPE: byte-pair merges over a store's codes, trained and applied by Hugging Face tokenizers.

Each audio token (codebook q, code c) becomes one character, U+F0000 + q*K + c (Supplementary Private Use
Area-A, room for 65,534 tokens), so an item in a 1-D pattern is one string and HF tokenizers' BPE trainer
(no normaliser, no pre-tokenizer: merges may cross frames) learns merges of frequent code sequences. The
saved directory is a `PreTrainedTokenizerFast` (`transformers.PreTrainedTokenizerFast.from_pretrained`)
plus `audio_bpe.json` (the store's codec, codebooks, pattern). `AudioBPE.encode(codes) -> ids` and
`decode(ids) -> codes` are exact inverses: a BPE token's string is the concatenation of the characters
it merged.

Patterns: `flatten` (frame-major) and `coarse_first` (codebook-major) are one string per item and are
supported; `parallel` and `delay` are Q streams and are refused. Ids: the special tokens first
(`<|pad|>`, `<|bos|>`, `<|eos|>`, `<|audio_start|>`, `<|audio_end|>`), then the Q*K single-code tokens,
then the merges. `AudioBPE` also offers the vocabulary interface of `AudioVocab` that the LM datasets use
(`to_ids`, `from_ids`, `pad_id`, `bos_id`, `eos_id`, `size`), so `TokenDataset(store, vocab=bpe)` and
`PackedTokenDataset` give BPE ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._checks import check_codes

BASE = 0xF0000
MAX_SYMBOLS = 0xFFFFD - BASE + 1
SPECIALS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|audio_start|>", "<|audio_end|>")
BPE_PATTERNS = ("flatten", "coarse_first")
INFO_FILE = "audio_bpe.json"


class BPEError(ValueError):
    """A BPE request that cannot be met (pattern, sizes, codes) or a directory that is not an audio BPE."""


def codes_to_text(codes: np.ndarray, codebook_size: int, pattern: str = "flatten") -> str:
    """codes [Q, T] -> one character per code, in the pattern's order."""
    codes = np.asarray(codes, dtype=np.int64)
    if pattern not in BPE_PATTERNS:
        raise BPEError(
            f"BPE takes the 1-D patterns {', '.join(BPE_PATTERNS)}; {pattern!r} has one stream per codebook"
        )
    ids = codes + (np.arange(codes.shape[0]) * codebook_size)[:, None]
    order = ids.T.reshape(-1) if pattern == "flatten" else ids.reshape(-1)
    return "".join(map(chr, (order + BASE).tolist()))


def text_to_codes(text: str, n_q: int, codebook_size: int, pattern: str = "flatten") -> np.ndarray:
    """The inverse of `codes_to_text` -> codes [Q, T]; BPEError when the characters are not such codes."""
    ids = np.fromiter((ord(ch) - BASE for ch in text), dtype=np.int64, count=len(text))
    if ids.size % n_q:
        raise BPEError(f"{ids.size} audio tokens do not divide into {n_q} codebooks")
    frames = ids.size // n_q
    grid = ids.reshape(frames, n_q).T if pattern == "flatten" else ids.reshape(n_q, frames)
    q = np.arange(n_q)[:, None]
    if grid.size and (
        bool((grid < q * codebook_size).any()) or bool((grid >= (q + 1) * codebook_size).any())
    ):
        raise BPEError(f"the tokens are not {pattern} codes of {n_q} codebooks of {codebook_size}")
    return grid - q * codebook_size


@dataclass
class AudioBPE:
    """A trained acoustic BPE: the HF tokenizer and the layout it codes."""

    tokenizer: Any  # transformers.PreTrainedTokenizerFast
    n_q: int
    codebook_size: int
    pattern: str
    info: dict

    def encode(self, codes: np.ndarray) -> list[int]:
        """codes [Q, T] -> BPE ids."""
        codes = check_codes(codes, self.codebook_size, n_q=self.n_q, error=BPEError)
        text = codes_to_text(codes, self.codebook_size, self.pattern)
        return self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> np.ndarray:
        """BPE ids -> codes [Q, T] (special tokens are skipped)."""
        strings = self.tokenizer.convert_ids_to_tokens(list(ids))
        if any(s is None for s in strings):
            raise BPEError("ids outside the tokenizer's vocabulary")
        text = "".join(s for s in strings if s not in SPECIALS)
        return text_to_codes(text, self.n_q, self.codebook_size, self.pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    # -- the AudioVocab interface of the LM datasets -----------------------------------------------------
    @property
    def size(self) -> int:
        return self.vocab_size

    @property
    def num_codebooks(self) -> int:
        return self.n_q

    base_size = 0  # no text ids: a text tokenizer's ids would collide with the BPE's

    def special(self, name: str) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(f"<|{name}|>"))

    @property
    def pad_id(self) -> int:
        return self.special("pad")

    @property
    def bos_id(self) -> int:
        return self.special("bos")

    @property
    def eos_id(self) -> int:
        return self.special("eos")

    def to_ids(
        self, codes, pattern: str = "flatten", markers: bool = False, bos: bool = False, eos: bool = False
    ):
        """codes [Q, T] (tensor or array) -> BPE ids [L] (torch), wrapped as `AudioVocab.to_ids` wraps them."""
        import torch

        if pattern != self.pattern:
            raise BPEError(f"this BPE was trained on the {self.pattern} pattern, not {pattern!r}")
        ids = self.encode(np.asarray(codes))
        names = (["bos"] if bos else []) + (["audio_start"] if markers else [])
        tail = (["audio_end"] if markers else []) + (["eos"] if eos else [])
        return torch.tensor(
            [self.special(n) for n in names] + ids + [self.special(n) for n in tail], dtype=torch.long
        )

    def from_ids(self, tokens, pattern: str = "flatten", n_q: int | None = None):
        """BPE ids -> codes [Q, T] (torch); framing and padding tokens are skipped."""
        import torch

        if pattern != self.pattern:
            raise BPEError(f"this BPE was trained on the {self.pattern} pattern, not {pattern!r}")
        return torch.from_numpy(self.decode(torch.as_tensor(tokens).reshape(-1).tolist()))

    @classmethod
    def load(cls, directory: str | Path) -> AudioBPE:
        directory = Path(directory)
        try:
            info = json.loads((directory / INFO_FILE).read_text())
        except (OSError, ValueError) as err:
            raise BPEError(f"{directory}: not an audio BPE directory ({err})") from err
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory))
        return cls(tokenizer, int(info["n_q"]), int(info["codebook_size"]), info["pattern"], info)


def train_bpe(
    store_dir: str | Path,
    vocab_size: int,
    out: str | Path,
    pattern: str = "flatten",
    n_q: int | None = None,
) -> AudioBPE:
    """Train BPE with `vocab_size` ids over the store's items (its first n_q codebooks) in `pattern`, and
    save it to `out` (a PreTrainedTokenizerFast directory plus audio_bpe.json)."""
    from tokenizers import Tokenizer, models, trainers
    from transformers import PreTrainedTokenizerFast

    from codeclab.tokens.store import TokenStore

    store = TokenStore(store_dir)
    if pattern not in BPE_PATTERNS:
        raise BPEError(
            f"BPE takes the 1-D patterns {', '.join(BPE_PATTERNS)}; {pattern!r} has one stream per codebook"
        )
    n_q = store.n_q if n_q is None else n_q
    if not 1 <= n_q <= store.n_q:
        raise BPEError(f"{store_dir}: n_q must be 1..{store.n_q}, got {n_q}")
    k = store.codebook_size
    symbols = n_q * k
    if symbols > MAX_SYMBOLS:
        raise BPEError(f"{n_q} x {k} audio tokens exceed the {MAX_SYMBOLS} characters BPE can map them to")
    least = symbols + len(SPECIALS)
    if vocab_size < least:
        raise BPEError(
            f"vocab_size must be at least {least} ({len(SPECIALS)} specials + {n_q} x {k} codes), got {vocab_size}"
        )
    alphabet = [chr(BASE + i) for i in range(symbols)]
    tokenizer = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=alphabet,
        limit_alphabet=symbols,
        show_progress=False,
    )
    texts = (codes_to_text(record.codes[:n_q], k, pattern) for record in store)
    tokenizer.train_from_iterator(texts, trainer, length=len(store))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=SPECIALS[0], bos_token=SPECIALS[1], eos_token=SPECIALS[2]
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    info = {
        "format": "codeclab-audio-bpe",
        "version": 1,
        "n_q": n_q,
        "codebook_size": k,
        "pattern": pattern,
        "vocab_size": len(fast),
        "codec": store.metadata.get("codec"),
        "frame_rate": store.metadata.get("frame_rate"),
        "base_character": BASE,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return AudioBPE(fast, n_q, k, pattern, info)
