"""A Hugging Face tokenizer extended with audio tokens (`export_hf_tokenizer`).

The vocabulary's special and audio tokens are appended to a local Hugging Face tokenizer. Their ids are
exactly `AudioVocab`'s layout with base_size = len(base tokenizer), which is verified before anything is
saved, so `AutoTokenizer.from_pretrained(out)` encodes interleaved text and audio into the ids an
`AudioVocab` computes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from codeclab._optional import install_hint
from codeclab.tokens.store import StoreLayout
from codeclab.tokens.vocab import AudioVocab, VocabError


def require_module(module: str, extra: str = "llm"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"this export needs {module}: {install_hint(extra)}") from err


def load_base_tokenizer(base: str | Path):
    """A local Hugging Face tokenizer directory (errors name it; a missing directory is refused before
    transformers could take its name for a hub id and retry the network)."""
    if not Path(base).is_dir():
        raise VocabError(f"{base}: no such directory (the base is a local Hugging Face tokenizer directory)")
    transformers = require_module("transformers")
    try:
        return transformers.AutoTokenizer.from_pretrained(str(base))
    except (OSError, ValueError) as err:
        raise VocabError(f"{base}: cannot load a tokenizer there ({str(err).splitlines()[0][:160]})") from err


def check_outside_store(store: str | Path, out: str | Path, error: type[Exception]) -> None:
    """Raise `error` when the export directory `out` is the store, sits inside it, or holds it."""
    store_dir, out_dir = Path(store).resolve(), Path(out).resolve()
    if out_dir == store_dir or store_dir in out_dir.parents or out_dir in store_dir.parents:
        raise error(f"{out}: the export directory must be outside the store {store} (and not hold it)")


def check_tokenizer_target(
    out: str | Path, marker: str, base: str | Path | None = None, store: str | Path | None = None
) -> None:
    """Refuse a tokenizer export directory that would overwrite what the export did not write: the base
    tokenizer itself, a token store (or a folder inside or around `store`), or a non-empty folder that
    holds no `marker` file of an earlier export of this kind (whose files it may then replace)."""
    out_dir = Path(out).resolve()
    if base is not None and Path(base).resolve() == out_dir:
        raise VocabError(
            f"{out}: is the base tokenizer's directory; the export would overwrite it (choose another --out)"
        )
    if StoreLayout(out_dir).is_store():
        raise VocabError(f"{out}: is a token store; write the tokenizer elsewhere")
    if store is not None:
        check_outside_store(store, out, VocabError)
    if out_dir.exists() and not out_dir.is_dir():
        raise VocabError(f"{out}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / marker).is_file():
        raise VocabError(
            f"{out}: holds files this export did not write (no {marker} of an earlier export); choose an "
            "empty or new --out"
        )


def base_roles(tok) -> dict[str, int]:
    """The base tokenizer's own pad / bos / eos ids (those it has): they keep their roles (vocab.py)."""
    roles = {}
    for role in ("pad", "bos", "eos"):
        token_id = getattr(tok, f"{role}_token_id", None)
        if getattr(tok, f"{role}_token", None) is not None and isinstance(token_id, int):
            roles[role] = token_id
    return roles


def vocab_on_base(
    base: str | Path, num_codebooks: int, codebook_size: int, metadata: dict | None = None
) -> AudioVocab:
    """The audio vocabulary placed after the tokenizer in `base`: base_size = len(tokenizer), and the
    base's own pad / bos / eos as roles. `export hf-tokenizer` and `export parquet --base` both use it."""
    tok = load_base_tokenizer(base)
    return AudioVocab(num_codebooks, codebook_size, len(tok), metadata=metadata or {}, roles=base_roles(tok))


def append_audio_tokens(
    tok, strings: list[str], num_specials: int, base: str | Path, error=VocabError
) -> None:
    """Add `strings` to the tokenizer `tok` (loaded from `base`) right after its own ids: the first
    `num_specials` as special tokens, the rest as plain added tokens, none normalised. Raises `error` when
    the tokenizer already has such a name or the new ids are not contiguous after its vocabulary."""
    tokenizers = require_module("tokenizers")
    base_size = len(tok)
    clash = [s for s in strings if s in tok.get_vocab()]
    if clash:
        raise error(f"{base}: the tokenizer already has tokens named like audio tokens (e.g. {clash[0]!r})")
    added = tokenizers.AddedToken
    tok.add_tokens(
        [added(s, special=True, normalized=False, single_word=False) for s in strings[:num_specials]],
        special_tokens=True,
    )
    tok.add_tokens(
        [added(s, special=False, normalized=False, single_word=False) for s in strings[num_specials:]]
    )
    if tok.convert_tokens_to_ids(strings) != list(range(base_size, base_size + len(strings))):
        raise error(f"{base}: the added audio tokens did not get contiguous ids after the base vocabulary")


def fill_in_roles(tok, roles: dict[str, int], audio_tokens: dict[str, str]) -> None:
    """The bos / eos / pad policy (vocab.py, docs/llm.md): the base tokenizer's own tokens keep their
    roles (`roles`); the audio specials (`audio_tokens`: role -> string, e.g. <|pad|>) fill in only those
    it lacks, so `tok(batch, padding=True)` always works."""
    for role, token in audio_tokens.items():
        if role not in roles:
            setattr(tok, f"{role}_token", token)


def export_hf_tokenizer(
    base: str | Path,
    out: str | Path,
    num_codebooks: int | None = None,
    codebook_size: int | None = None,
    metadata: dict | None = None,
    vocab: AudioVocab | None = None,
) -> AudioVocab:
    """Extend the tokenizer in `base` with audio tokens; save it and `audio_vocab.json` to `out`.

    The audio vocabulary is either sized here (num_codebooks, codebook_size) or given (`vocab`, e.g. the
    audio_vocab.json a parquet export wrote): then it must have been built on this base (same base_size),
    so that ids already exported mean the same tokens."""
    require_module("tokenizers")  # the install hint before the base is loaded
    check_tokenizer_target(out, "audio_vocab.json", base)
    tok = load_base_tokenizer(base)
    if vocab is not None:
        if vocab.base_size != len(tok):
            raise VocabError(
                f"the vocabulary was built on a base of {vocab.base_size} ids; the tokenizer in {base} has "
                f"{len(tok)}: ids exported with it would name other tokens here"
            )
        vocab = AudioVocab(
            vocab.num_codebooks,
            vocab.codebook_size,
            len(tok),
            vocab.token_format,
            vocab.special_format,
            dict(vocab.metadata),
            roles=base_roles(tok),
        )
    else:
        if num_codebooks is None or codebook_size is None:
            raise VocabError("give num_codebooks and codebook_size, or a vocabulary")
        vocab = AudioVocab(
            num_codebooks, codebook_size, len(tok), metadata=metadata or {}, roles=base_roles(tok)
        )
    strings = vocab.token_strings()
    append_audio_tokens(tok, strings, vocab.num_specials, base)
    fill_in_roles(
        tok, vocab.roles, {r: strings[vocab.special(r) - vocab.base_size] for r in ("pad", "bos", "eos")}
    )
    for role in ("pad", "bos", "eos"):
        if getattr(tok, f"{role}_token_id") != vocab.role(role):
            raise VocabError(f"{base}: the tokenizer's {role} id disagrees with the vocabulary's")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    vocab.save(out / "audio_vocab.json")
    return vocab


def audio_text(vocab: AudioVocab, tokens: torch.Tensor) -> str:
    """The token strings of audio / special ids (e.g. vocab.to_ids(codes, markers=True)) as one string that
    the exported tokenizer maps back to exactly those ids."""
    strings = vocab.token_strings()
    ids = torch.as_tensor(tokens).reshape(-1).tolist()
    if any(i < vocab.base_size or i >= vocab.size for i in ids):
        raise VocabError("audio_text takes special and audio ids only")
    return "".join(strings[i - vocab.base_size] for i in ids)
