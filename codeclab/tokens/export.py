"""Exports for LLM tooling: a Hugging Face tokenizer extended with audio tokens, and Parquet datasets.

`export_hf_tokenizer` appends the vocabulary's special and audio tokens to a local Hugging Face tokenizer.
Their ids are exactly `AudioVocab`'s layout with base_size = len(base tokenizer), which is verified before
anything is saved, so `AutoTokenizer.from_pretrained(out)` encodes interleaved text and audio into the ids
an `AudioVocab` computes. `export_parquet` writes a store as `data/train-XXXXX-of-YYYYY.parquet` (the
Hugging Face datasets layout) that `datasets.load_dataset("parquet", data_files=...)` or
`datasets.load_dataset(out)` reads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from codeclab.tokens.store import TokenStore, atomic_write_text
from codeclab.tokens.vocab import AudioVocab, VocabError


def _require(module: str, extra: str = "llm"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"this export needs {module}: pip install 'codeclab[{extra}]'") from err


def export_hf_tokenizer(
    base: str | Path, out: str | Path, num_codebooks: int, codebook_size: int, metadata: dict | None = None
) -> AudioVocab:
    """Extend the tokenizer in `base` with audio tokens; save it and `audio_vocab.json` to `out`."""
    transformers = _require("transformers")
    tokenizers = _require("tokenizers")
    tok = transformers.AutoTokenizer.from_pretrained(str(base))
    vocab = AudioVocab(num_codebooks, codebook_size, base_size=len(tok), metadata=metadata or {})
    strings = vocab.token_strings()
    clash = [s for s in strings if s in tok.get_vocab()]
    if clash:
        raise VocabError(
            f"{base}: the tokenizer already has tokens named like audio tokens (e.g. {clash[0]!r})"
        )
    specials = strings[: vocab.num_specials]
    codes = strings[vocab.num_specials :]
    added = tokenizers.AddedToken
    tok.add_tokens(
        [added(s, special=True, normalized=False, single_word=False) for s in specials], special_tokens=True
    )
    tok.add_tokens([added(s, special=False, normalized=False, single_word=False) for s in codes])
    ids = tok.convert_tokens_to_ids(strings)
    if ids != list(range(vocab.base_size, vocab.size)):
        raise VocabError(
            f"{base}: the added audio tokens did not get contiguous ids after the base vocabulary"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    vocab.save(out / "audio_vocab.json")
    return vocab


def audio_text(vocab: AudioVocab, tokens: torch.Tensor) -> str:
    """The token strings of audio / special ids (e.g. vocab.encode(codes, markers=True)) as one string that
    the exported tokenizer maps back to exactly those ids."""
    strings = vocab.token_strings()
    ids = torch.as_tensor(tokens).reshape(-1).tolist()
    if any(i < vocab.base_size or i >= vocab.size for i in ids):
        raise VocabError("audio_text takes special and audio ids only")
    return "".join(strings[i - vocab.base_size] for i in ids)


def export_parquet(
    store: str | Path,
    out: str | Path,
    rows_per_file: int = 10_000,
    vocab: AudioVocab | None = None,
    pattern: str | None = None,
    n_q: int | None = None,
) -> list[Path]:
    """Write the store's items (sorted by id) as Parquet files under out/data/. Columns: id, codes
    ([n_q][frames]), num_frames, duration, text, path, sha256, and input_ids when a pattern is given."""
    pa = _require("pyarrow", "llm")
    import pyarrow.parquet as pq

    tokens = TokenStore(store)
    n_q = n_q or tokens.n_q
    if pattern is not None:
        vocab = vocab or AudioVocab.for_store(tokens, n_q=n_q)
    out = Path(out)
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    ids = tokens.ids()
    files = max(1, -(-len(ids) // rows_per_file))
    written = []
    for f in range(files):
        chunk = [tokens[i] for i in ids[f * rows_per_file : (f + 1) * rows_per_file]]
        columns = {
            "id": [r.id for r in chunk],
            "codes": [r.codes[:n_q].tolist() for r in chunk],
            "num_frames": pa.array([r.num_frames for r in chunk], pa.int32()),
            "duration": [r.duration for r in chunk],
            "text": [r.text for r in chunk],
            "path": [r.path for r in chunk],
            "sha256": [r.sha256 for r in chunk],
        }
        if pattern is not None:
            columns["input_ids"] = [vocab.encode(r.tensor()[:n_q], pattern).tolist() for r in chunk]
        path = data / f"train-{f:05d}-of-{files:05d}.parquet"
        pq.write_table(pa.table(columns), path, compression="zstd")
        written.append(path)
    meta = dict(tokens.metadata)
    meta["n_q"] = n_q
    atomic_write_text(out / "codeclab_tokens.json", json.dumps(meta, indent=2) + "\n")
    if vocab is not None:
        vocab.save(out / "audio_vocab.json")
    card = (
        f"# codeclab token dataset\n\nExported from `{store}`: {len(ids)} items, codec `{meta['codec'].get('name')}`, "
        f"{meta['frame_rate']} frames/s, {n_q} codebooks of {meta['codebook_size']} codes.\n\n"
        "```python\nimport datasets\nds = datasets.load_dataset('parquet', data_files='data/*.parquet')['train']\n```\n"
    )
    atomic_write_text(out / "README.md", card)
    return written
