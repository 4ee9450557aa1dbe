"""Exports for LLM tooling: Parquet datasets, and (from `tokens.hf_tokenizer`, re-exported here) a Hugging
Face tokenizer extended with audio tokens.

`export_parquet` writes a store as `data/train-XXXXX-of-YYYYY.parquet` (the
Hugging Face datasets layout; with a `split` in the items' metadata, one set of files per split,
`data/SPLIT-XXXXX-of-YYYYY.parquet`, and the card names them) that
`datasets.load_dataset("parquet", data_files=...)` or `datasets.load_dataset(out)` reads. The items'
metadata (speaker, language, split, any other column of the input) become columns of their own.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from codeclab._files import (
    atomic_write_json,
    atomic_write_text,
    default_file_mode,
    is_temp_file,
    temp_path_for,
)
from codeclab._progress import progress_iter
from codeclab.tokens.hf_tokenizer import (
    append_audio_tokens,
    audio_text,
    base_roles,
    check_outside_store,
    check_tokenizer_target,
    export_hf_tokenizer,
    fill_in_roles,
    load_base_tokenizer,
    require_module,
    vocab_on_base,
)
from codeclab.tokens.store import TokenStore, card_header
from codeclab.tokens.vocab import PATTERNS, AudioVocab, VocabError

__all__ = [  # the tokenizer export lives in tokens/hf_tokenizer.py; its names stay importable from here
    "ExportError",
    "append_audio_tokens",
    "audio_text",
    "base_roles",
    "check_outside_store",
    "check_pairing",
    "check_tokenizer_target",
    "export_hf_tokenizer",
    "export_parquet",
    "fill_in_roles",
    "load_base_tokenizer",
    "vocab_on_base",
]


PARQUET_NAME = re.compile(r"[A-Za-z0-9_]+-\d{5}-of-\d{5}\.parquet$")  # SPLIT-XXXXX-of-YYYYY
EXPORT_FILES = ("codeclab_tokens.json", "audio_vocab.json", "README.md")


class ExportError(ValueError):
    """An export that would overwrite or delete what it did not write, or asks for what the store lacks."""


def _is_export_temp(name: str) -> bool:
    """`.train-XXXXX-of-YYYYY.parquet.RANDOM.tmp`: a Parquet file an export was writing when killed."""
    return is_temp_file(name) and bool(PARQUET_NAME.match(name[1:].rsplit(".", 2)[0]))


def _check_target(store: Path, out: Path, overwrite: bool) -> list[Path]:
    """The earlier export files under `out` that this export replaces; refuses anything else.

    An export never deletes what it did not write: `out` must not be (or hold, or sit inside) the store,
    and `out/data` may hold only files named like our Parquet files, and only with overwrite=True."""
    check_outside_store(store, out, ExportError)
    data = out / "data"
    if data.exists() and not data.is_dir():
        raise ExportError(f"{data}: exists and is not a directory")
    earlier = (out / "codeclab_tokens.json").is_file()  # an earlier export of ours
    ours_named = [name for name in EXPORT_FILES if (out / name).exists()]
    if ours_named and not earlier:
        raise ExportError(
            f"{out}: holds {ours_named[0]}, which no earlier export wrote (no codeclab_tokens.json); "
            "choose an empty --out"
        )
    existing = sorted(data.iterdir()) if data.is_dir() else []
    for stale in [p for p in existing if _is_export_temp(p.name)]:
        stale.unlink(missing_ok=True)  # left by an export that was killed mid-write
        existing.remove(stale)
    foreign = [p for p in existing if not PARQUET_NAME.match(p.name)]
    if foreign:
        raise ExportError(
            f"{data}: holds {len(foreign)} file(s) this export did not write (e.g. {foreign[0].name}); "
            "choose an empty --out"
        )
    if existing and not earlier:
        raise ExportError(
            f"{data}: holds files, but {out} has no codeclab_tokens.json of an earlier export; nothing is "
            "replaced or deleted there: choose an empty --out"
        )
    if existing and not overwrite:
        raise ExportError(
            f"{data}: holds {len(existing)} Parquet file(s) of an earlier export; pass --overwrite to replace them"
        )
    return existing


def check_vocab_fits(vocab: AudioVocab, tokens: TokenStore, n_q: int) -> AudioVocab:
    """Refuse a vocabulary that cannot name the store's codes: too few codebooks, another codebook size,
    or another codec (when the vocabulary records one)."""
    if vocab.codebook_size != tokens.codebook_size or vocab.num_codebooks < n_q:
        raise ExportError(
            f"the vocabulary holds {vocab.num_codebooks} codebooks of {vocab.codebook_size} codes; the export "
            f"needs {n_q} of {tokens.codebook_size} ({tokens.path})"
        )
    named = (
        (vocab.metadata.get("codec") or {}).get("name")
        if isinstance(vocab.metadata.get("codec"), dict)
        else None
    )
    stored = (tokens.metadata.get("codec") or {}).get("name")
    if named is not None and stored is not None and named != stored:
        raise ExportError(
            f"the vocabulary was made for codec {named!r}; {tokens.path} holds codes of {stored!r}"
        )
    return vocab


def file_jobs(
    ids: list[str], metas: dict[str, dict], rows_per_file: int
) -> list[tuple[str, int, int, list[str]]]:
    """(split, file number, files in the split, ids) of each Parquet file: the ids grouped by their
    metadata's split (train when none), `rows_per_file` per file; one empty train file for no items."""
    by_split: dict[str, list[str]] = {}
    for item_id in ids:
        by_split.setdefault(split_name(metas.get(item_id, {}).get("split")), []).append(item_id)
    return [
        (split, f, -(-len(members) // rows_per_file), members[f * rows_per_file : (f + 1) * rows_per_file])
        for split, members in sorted(by_split.items())
        for f in range(-(-len(members) // rows_per_file))
    ] or [("train", 0, 1, [])]


def _input_ids_dataset(
    tokens: TokenStore,
    n_q: int,
    vocab: AudioVocab | None,
    pattern: str | None,
    base: str | Path | None,
    audio_only: bool,
    framing: bool,
    text: str | None,
    tokenizer,
):
    """(vocabulary, the dataset that makes each row's input_ids) for a pattern; (vocab, None) without one.
    Every choice is checked here, before anything is written."""
    if pattern is None:
        return vocab, None
    if pattern not in PATTERNS:
        raise ExportError(f"unknown pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    if sum((vocab is not None, base is not None, audio_only)) != 1:
        raise ExportError(NO_VOCABULARY)
    meta_vocab = {"codec": tokens.metadata["codec"], "frame_rate": tokens.metadata["frame_rate"]}
    text_tokenizer = tokenizer
    if base is not None:
        vocab = vocab_on_base(base, n_q, tokens.codebook_size, meta_vocab)
        text_tokenizer = tokenizer or (load_base_tokenizer(base) if text else None)  # its text ids
    vocab = check_vocab_fits(vocab or AudioVocab.for_store(tokens, n_q=n_q), tokens, n_q)
    if tokenizer is not None:  # the tokenizer the ids are for: it must read them as this vocabulary
        check_pairing(tokenizer, vocab)
    return vocab, _framed_dataset(tokens, vocab, pattern, n_q, framing, text, text_tokenizer)


def _stage_files(
    tokens, jobs, ids, meta_columns, data: Path, code_type, n_q: int, pattern, dataset, label: str
):
    """Write each job's rows to a temporary file beside its final name; [(temporary, final)]. A failure
    removes what was staged (an earlier export stays whole)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    position = {item_id: n for n, item_id in enumerate(ids)}
    staged: list[tuple[Path, Path]] = []
    try:
        for split, f, files, chunk_ids in progress_iter(jobs, f"export {label}", len(jobs), "files"):
            chunk = [tokens[i] for i in chunk_ids]
            columns = {
                "id": [r.id for r in chunk],
                "codes": pa.array([r.codes[:n_q].tolist() for r in chunk], pa.list_(pa.list_(code_type))),
                "num_frames": pa.array([r.num_frames for r in chunk], pa.int32()),
                "duration": pa.array([r.duration for r in chunk], pa.float64()),
                "text": pa.array([r.text for r in chunk], pa.string()),
                "path": pa.array([r.path for r in chunk], pa.string()),
                "sha256": pa.array([r.sha256 for r in chunk], pa.string()),
            }
            rows = [position[i] for i in chunk_ids]
            columns.update(
                {name: array.take(pa.array(rows, pa.int64())) for name, array in meta_columns.items()}
            )
            if pattern is not None:
                ids_type = (
                    pa.list_(pa.int32())
                    if pattern in ("flatten", "coarse_first")
                    else pa.list_(pa.list_(pa.int32()))
                )
                columns["input_ids"] = pa.array([dataset.tokens(r).tolist() for r in chunk], ids_type)
            path = data / f"{split}-{f:05d}-of-{files:05d}.parquet"
            tmp = temp_path_for(path)
            staged.append((tmp, path))
            pq.write_table(pa.table(columns), tmp, compression="zstd")
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return staged


def export_parquet(
    store: str | Path,
    out: str | Path,
    rows_per_file: int = 10_000,
    vocab: AudioVocab | None = None,
    pattern: str | None = None,
    n_q: int | None = None,
    overwrite: bool = False,
    base: str | Path | None = None,
    audio_only: bool = False,
    framing: bool = False,
    text: str | None = None,
    tokenizer=None,
) -> list[Path]:
    """Write the store's items (sorted by id) as Parquet files under out/data/. Columns: id, codes
    ([n_q][frames], in the store's own int16 / int32), num_frames, duration, text, path, sha256, and
    input_ids (int32) when a pattern is given.

    The ids follow one vocabulary, chosen explicitly: `vocab` (e.g. `AudioVocab.load("tok-audio")`, the
    one an exported tokenizer wrote; `tokenizer`, when given, is checked to map its tokens to those ids),
    or the one built on the tokenizer in `base` (as `export_hf_tokenizer` builds it), or with
    `audio_only=True` codeclab's own (ids from 0, `AudioVocab.for_store`, for a model of audio alone).
    A pattern with none of them is refused: ids read with another tokenizer would name other codes.
    `framing=True` gives `input_ids` the sequence `TokenDataset` builds (bos, audio_start, codes,
    audio_end, eos); `text="before"|"after"` also puts the item's text there, tokenized by `tokenizer`
    (or the base's). Every argument is checked before anything is written. The new files are written
    beside the old ones under temporary names and renamed into
    place at the end, so a failed export leaves an earlier one whole; with overwrite=True only that
    earlier export's own Parquet files are removed."""
    pa = require_module("pyarrow", "llm")
    import pyarrow.parquet as pq

    tokens = TokenStore(store)
    if rows_per_file < 1:
        raise ExportError(f"rows_per_file must be at least 1, got {rows_per_file}")
    n_q = tokens.n_q if n_q is None else n_q
    if isinstance(n_q, bool) or not isinstance(n_q, int) or not 1 <= n_q <= tokens.n_q:
        raise ExportError(
            f"{store}: the store has {tokens.n_q} codebooks; n_q must be 1..{tokens.n_q}, got {n_q!r}"
        )
    if vocab is not None and base is not None:
        raise ExportError("give a vocabulary or a base tokenizer, not both (the vocabulary names its base)")
    if pattern is None and (vocab is not None or base is not None or audio_only or framing or text):
        raise ExportError(
            "a vocabulary, base tokenizer, --audio-only, --framing or --text sets input_ids: give --pattern too"
        )
    vocab, dataset = _input_ids_dataset(
        tokens, n_q, vocab, pattern, base, audio_only, framing, text, tokenizer
    )
    code_type = pa.int16() if tokens.metadata.get("codes_dtype", "int16") == "int16" else pa.int32()
    out = Path(out)
    previous = _check_target(Path(store), out, overwrite)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    metas = tokens.item_meta()
    meta_columns = meta_arrays(metas, tokens.ids())
    ids = tokens.ids()
    jobs = file_jobs(ids, metas, rows_per_file)
    staged = _stage_files(tokens, jobs, ids, meta_columns, data, code_type, n_q, pattern, dataset, out.name)
    new_names = {path for _, path in staged}
    for old in previous:
        if old not in new_names:
            old.unlink()
    for tmp, path in staged:
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    written = [path for _, path in staged]
    meta = dict(tokens.metadata)
    meta["n_q"] = n_q
    atomic_write_json(out / "codeclab_tokens.json", meta)
    if vocab is not None:
        vocab.save(out / "audio_vocab.json")
    splits = sorted({split for split, *_ in jobs})
    atomic_write_text(
        out / "README.md",
        export_card(store, meta, len(ids), pq.read_schema(written[0]), vocab, pattern, splits),
    )
    return written


NO_VOCABULARY = (
    "input_ids need the vocabulary of the tokenizer the model reads them with: --vocab TOKENIZER_DIR (the "
    "directory `codeclab export hf-tokenizer` wrote), --base LLM_TOKENIZER_DIR (builds the same vocabulary), "
    "or --audio-only (codeclab's own ids from 0, for a model of audio alone, no text tokenizer)"
)


def _framed_dataset(tokens, vocab, pattern: str, n_q: int, framing: bool, text: str | None, tokenizer):
    """The `TokenDataset` whose `tokens(record)` are the export's input_ids (bare codes unless framing)."""
    from codeclab.tokens.lm_dataset import FLAT_PATTERNS, TokenDataset

    if (framing or text) and pattern not in FLAT_PATTERNS:
        raise ExportError(
            f"--framing and --text take a flat pattern (flatten, coarse_first), not {pattern!r}"
        )
    if text is not None and text not in ("before", "after"):
        raise ExportError(f"--text is 'before' or 'after', got {text!r}")
    if text is not None and tokenizer is None:
        raise ExportError("--text needs a text tokenizer: --vocab TOKENIZER_DIR or --base LLM_TOKENIZER_DIR")
    encode = (lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]) if text else None
    return TokenDataset(
        tokens,
        vocab,
        pattern,
        n_q=n_q,
        markers=framing or bool(text),
        bos=framing or bool(text),
        eos=framing or bool(text),
        text_tokenizer=encode,
        text_position=text or "before",
        ids=[],
    )


def check_pairing(tokenizer, vocab: AudioVocab | str | Path) -> AudioVocab:
    """Raise VocabError unless `tokenizer` maps every special and audio token of `vocab` (an AudioVocab,
    an audio_vocab.json, or a directory holding one, such as an export's) to exactly the vocabulary's id.
    Call it where a tokenizer meets exported data: ids from another vocabulary would name other codes."""
    vocab = vocab if isinstance(vocab, AudioVocab) else AudioVocab.load(vocab)
    strings = vocab.token_strings()
    got = tokenizer.convert_tokens_to_ids(strings)
    for offset, (string, found) in enumerate(zip(strings, got)):
        if found != vocab.base_size + offset:
            raise VocabError(
                f"the tokenizer ({len(tokenizer)} ids) reads {string!r} as id {found}; the data's vocabulary "
                f"has it at {vocab.base_size + offset} (base_size {vocab.base_size}): export the data with "
                "--vocab TOKENIZER_DIR, the directory of this tokenizer"
            )
    return vocab


RECORD_FIELDS = ("id", "codes", "num_frames", "duration", "text", "path", "sha256", "input_ids")


def split_name(value) -> str:
    """A metadata `split` as the export's split name (file-name safe; "train" when there is none)."""
    if value in (None, ""):
        return "train"
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(value))
    return name or "train"


def meta_arrays(metas: dict[str, dict], ids: list[str]) -> dict:
    """One Arrow column per metadata key, rows in `ids` order: the type Arrow infers over all items, or
    JSON text when the values do not share one. A key named like a record column gets a `meta_` prefix."""
    import pyarrow as pa

    keys = sorted({key for meta in metas.values() for key in meta})
    columns = {}
    for key in keys:
        values = [metas.get(item_id, {}).get(key) for item_id in ids]
        try:
            array = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            array = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False) for v in values], pa.string()
            )
        if pa.types.is_null(array.type):
            array = array.cast(pa.string())
        columns[f"meta_{key}" if key in RECORD_FIELDS else key] = array
    return columns


def export_card(
    store, meta: dict, items: int, schema, vocab: AudioVocab | None, pattern: str | None, splits: list[str]
) -> str:
    """The export's README.md: a YAML header Hugging Face datasets reads (configs, features), then prose."""
    ids = (
        f"`input_ids` are the {pattern} pattern of the vocabulary in `audio_vocab.json` (base of "
        f"{vocab.base_size} ids, audio from id {vocab.audio_offset}; pad {vocab.pad_id}, bos {vocab.bos_id}, "
        f"eos {vocab.eos_id}).\n\n"
        if vocab is not None
        else ""
    )
    body = (
        f"# codeclab token dataset\n\nExported from `{store}`: {items} items, codec `{meta['codec'].get('name')}`, "
        f"{meta['frame_rate']} frames/s, {meta['n_q']} codebooks of {meta['codebook_size']} codes, stored as "
        f"{meta.get('codes_dtype', 'int16')}.\n\n{ids}"
        '```python\nimport datasets\nds = datasets.load_dataset(EXPORT_DIR, split="train")\n'
        'ds = datasets.load_dataset(EXPORT_DIR, split="train", streaming=True)  # read lazily\n```\n'
    )
    return card_header({split: f"data/{split}-*.parquet" for split in splits}, schema) + body
