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

Merged with a text tokenizer (`train_bpe(..., base=DIR)`): the saved directory is that tokenizer with one
added token per audio id (`<|abpe_N|>`, after the text ids: merged id = base_size + audio id), and the
audio-only BPE sits in `audio/`; `audio_text(ids)` is the string the merged tokenizer maps back to ids.
Without a base, `audio_text(ids)` is the string of the tokens' own characters, which the saved tokenizer
maps back to the same ids (checked: ids it would segment otherwise are refused).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codeclab._checks import check_codes
from codeclab._files import atomic_write_json
from codeclab.tokens.roles import SpecialRoles

BASE = 0xF0000
MAX_SYMBOLS = 0xFFFFD - BASE + 1
SPECIALS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|audio_start|>", "<|audio_end|>")
BPE_PATTERNS = ("flatten", "coarse_first")
INFO_FILE = "audio_bpe.json"
MAX_MERGES = 1 << 20  # the trainer allocates for vocab_size up front: an absurd size would abort the process
AUDIO_SUBDIR = "audio"  # the audio-only BPE, beside a merged tokenizer
MERGED_FORMAT = "<|abpe_{}|>"  # a merged tokenizer's string for audio id N


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
class AudioBPE(SpecialRoles):
    """A trained acoustic BPE: the HF tokenizer of its audio ids and the layout it codes. With a text
    tokenizer merged in (`base_size` > 0), every audio id is shifted by `base_size`, `merged` is the
    combined tokenizer and `roles` the base's own pad / bos / eos ids (see `train_bpe`)."""

    tokenizer: Any  # transformers.PreTrainedTokenizerFast over the audio characters
    n_q: int
    codebook_size: int
    pattern: str
    info: dict
    base_size: int = 0
    roles: dict = field(default_factory=dict)
    merged: Any = None  # the text tokenizer extended with the audio tokens (when base_size > 0)
    _first_codebook: np.ndarray | None = field(default=None, repr=False, compare=False)

    def encode(self, codes: np.ndarray) -> list[int]:
        """codes [Q, T] -> BPE ids (after the text ids when a text tokenizer is merged in)."""
        codes = check_codes(codes, self.codebook_size, n_q=self.n_q, error=BPEError)
        text = codes_to_text(codes, self.codebook_size, self.pattern)
        ids = self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
        return [i + self.base_size for i in ids] if self.base_size else ids

    def decode(self, ids: list[int]) -> np.ndarray:
        """BPE ids -> codes [Q, T] (special tokens and the base's pad / bos / eos are skipped; other text
        ids raise BPEError)."""
        framing = set(self.roles.values())
        audio = [int(i) - self.base_size for i in ids if int(i) not in framing]
        if any(i < 0 for i in audio):
            raise BPEError("the ids hold text tokens; decode takes the audio part of a sequence")
        strings = self.tokenizer.convert_ids_to_tokens(audio)
        if any(s is None for s in strings):
            raise BPEError("ids outside the tokenizer's vocabulary")
        text = "".join(s for s in strings if s not in SPECIALS)
        return text_to_codes(text, self.n_q, self.codebook_size, self.pattern)

    @property
    def vocab_size(self) -> int:
        return self.base_size + len(self.tokenizer)

    @property
    def first_audio_id(self) -> int:
        """The first id that stands for codes (the specials come before it)."""
        return self.base_size + len(SPECIALS)

    def codes_per_token(self, ids: list[int]) -> int:
        """How many codes the audio ids stand for together (a merged token stands for several)."""
        strings = self.tokenizer.convert_ids_to_tokens([int(i) - self.base_size for i in ids])
        return sum(len(s) for s in strings if s not in SPECIALS)

    def continuation_mask(self, codes_so_far: int) -> np.ndarray:
        """bool [vocab_size]: the ids that may follow `codes_so_far` codes of a flatten sequence and keep
        it decodable (each audio id whose first code belongs to the next codebook in line). For sampling
        from a model: mask the other logits, and cut the result to whole frames."""
        if self.pattern != "flatten":
            raise BPEError(f"continuations follow the flatten pattern; this BPE codes {self.pattern}")
        if self._first_codebook is None:
            strings = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            first = [(ord(s[0]) - BASE) // self.codebook_size if s not in SPECIALS else -1 for s in strings]
            self._first_codebook = np.concatenate([np.full(self.base_size, -1), np.array(first)])
        return self._first_codebook == codes_so_far % self.n_q

    def token_strings(self) -> list[str]:
        """The merged tokenizer's strings of the ids from base_size on, in id order: the specials, then
        `<|abpe_N|>` for audio id N."""
        count = len(self.tokenizer)
        return list(SPECIALS) + [MERGED_FORMAT.format(i) for i in range(len(SPECIALS), count)]

    def audio_text(self, ids: list[int]) -> str:
        """Audio and special ids (>= base_size) as the string this BPE's saved tokenizer maps back to
        exactly those ids: `<|abpe_N|>` names for a merged tokenizer; for a BPE without a base, the
        tokens' own strings (private-use characters, and the specials). Ids that the tokenizer would
        segment differently (BPE re-merges a string its own way) raise BPEError rather than round-trip
        to other ids."""
        ids = [int(i) for i in ids]
        if any(not self.base_size <= i < self.vocab_size for i in ids):
            raise BPEError("audio_text takes the audio and special ids of the merged vocabulary only")
        if self.base_size:
            strings = self.token_strings()
            return "".join(strings[i - self.base_size] for i in ids)
        text = "".join(self.tokenizer.convert_ids_to_tokens(ids))
        again = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if again != ids:
            first = next((n for n, (a, b) in enumerate(zip(again, ids)) if a != b), min(len(again), len(ids)))
            raise BPEError(
                f"these ids are not the tokenizer's own segmentation of their codes (it reads the text back "
                f"differently from position {first}); pass ids made by bpe.encode(codes), or write "
                "bpe.encode(bpe.decode(ids)) first"
            )
        return text

    # -- the AudioVocab interface of the LM datasets -----------------------------------------------------
    @property
    def size(self) -> int:
        return self.vocab_size

    @property
    def num_codebooks(self) -> int:
        return self.n_q

    def special(self, name: str) -> int:
        return self.base_size + int(self.tokenizer.convert_tokens_to_ids(f"<|{name}|>"))

    def to_ids(
        self, codes, pattern: str = "flatten", markers: bool = False, bos: bool = False, eos: bool = False
    ):
        """codes [Q, T] (tensor or array) -> BPE ids [L] (torch), wrapped as `AudioVocab.to_ids` wraps them."""
        import torch

        if pattern != self.pattern:
            raise BPEError(f"this BPE was trained on the {self.pattern} pattern, not {pattern!r}")
        ids = self.encode(np.asarray(codes))
        head = ([self.bos_id] if bos else []) + ([self.special("audio_start")] if markers else [])
        tail = ([self.special("audio_end")] if markers else []) + ([self.eos_id] if eos else [])
        return torch.tensor(head + ids + tail, dtype=torch.long)

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

        base_size = int(info.get("base_size", 0))
        audio_dir = directory / AUDIO_SUBDIR if base_size else directory
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(audio_dir))
        merged = PreTrainedTokenizerFast.from_pretrained(str(directory)) if base_size else None
        roles = {k: int(v) for k, v in (info.get("base_roles") or {}).items()}
        return cls(
            tokenizer,
            int(info["n_q"]),
            int(info["codebook_size"]),
            info["pattern"],
            info,
            base_size,
            roles,
            merged,
        )


def check_vocab_size(vocab_size: int, n_q: int, k: int) -> None:
    """BPEError unless `vocab_size` holds the specials and every code, with at most MAX_MERGES merges,
    and the n_q x k codes fit the characters BPE maps them to."""
    symbols = n_q * k
    if symbols > MAX_SYMBOLS:
        raise BPEError(f"{n_q} x {k} audio tokens exceed the {MAX_SYMBOLS} characters BPE can map them to")
    least = symbols + len(SPECIALS)
    if vocab_size < least:
        raise BPEError(
            f"vocab_size must be at least {least} ({len(SPECIALS)} specials + {n_q} x {k} codes), got {vocab_size}"
        )
    if vocab_size > least + MAX_MERGES:
        raise BPEError(
            f"vocab_size {vocab_size} asks for {vocab_size - least} merges; at most {MAX_MERGES} are allowed "
            f"(vocab_size up to {least + MAX_MERGES})"
        )


def train_bpe(
    store_dir: str | Path,
    vocab_size: int,
    out: str | Path,
    pattern: str = "flatten",
    n_q: int | None = None,
    base: str | Path | None = None,
) -> AudioBPE:
    """Train BPE with `vocab_size` audio ids (specials + Q*K codes + merges) over the store's items (its
    first n_q codebooks) in `pattern`, and save it to `out`: a PreTrainedTokenizerFast directory plus
    audio_bpe.json. With `base` (a local Hugging Face tokenizer directory), `out` holds that tokenizer
    extended with the audio tokens instead: its own ids unchanged, then the audio ids shifted by its size
    (`<|pad|>` ... `<|audio_end|>`, then `<|abpe_N|>`), its pad / bos / eos kept (the audio specials fill
    in those it lacks), and the audio-only BPE in `out/audio/`."""
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
    check_vocab_size(vocab_size, n_q, k)
    from codeclab.tokens.hf_tokenizer import check_tokenizer_target

    try:
        check_tokenizer_target(out, INFO_FILE, base, store_dir)
    except ValueError as err:
        raise BPEError(str(err)) from None
    text_tokenizer = _load_base(base) if base is not None else None
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
    bpe = AudioBPE(fast, n_q, k, pattern, info)
    if text_tokenizer is None:
        fast.save_pretrained(str(out))
    elif base is not None:
        bpe = _merge_with_text(bpe, text_tokenizer, base)
        fast.save_pretrained(str(out / AUDIO_SUBDIR))
        bpe.merged.save_pretrained(str(out))
    atomic_write_json(out / INFO_FILE, bpe.info)
    return bpe


def _load_base(base: str | Path):
    from codeclab.tokens.hf_tokenizer import load_base_tokenizer

    try:
        return load_base_tokenizer(base)
    except ValueError as err:
        raise BPEError(str(err)) from err


def _merge_with_text(bpe: AudioBPE, text_tokenizer: Any, base: str | Path) -> AudioBPE:
    """`bpe` placed after `text_tokenizer`'s ids: the tokenizer extended with one added token per audio
    id (checked to land on base_size + id), and the roles policy of `codeclab export hf-tokenizer`."""
    from codeclab.tokens.hf_tokenizer import append_audio_tokens, base_roles, fill_in_roles

    base_size = len(text_tokenizer)
    merged = AudioBPE(bpe.tokenizer, bpe.n_q, bpe.codebook_size, bpe.pattern, dict(bpe.info), base_size)
    append_audio_tokens(text_tokenizer, merged.token_strings(), len(SPECIALS), base, error=BPEError)
    merged.roles = base_roles(text_tokenizer)
    fill_in_roles(text_tokenizer, merged.roles, {r: f"<|{r}|>" for r in ("pad", "bos", "eos")})
    merged.merged = text_tokenizer
    merged.info.update(
        base_size=base_size,
        base_tokenizer=str(base),
        base_roles=merged.roles,
        merged_vocab_size=merged.vocab_size,
        merged_token_format=MERGED_FORMAT,
    )
    return merged
