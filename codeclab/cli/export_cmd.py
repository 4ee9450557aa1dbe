"""`codeclab export ...`: hand tokens to LLM tooling (Hugging Face tokenizers, Parquet / datasets, lhotse,
WebDataset)."""

from __future__ import annotations

from pathlib import Path

import typer

from codeclab.cli.common import console, fail

export_app = typer.Typer(help="Export tokens and vocabularies for LLM training.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")


@export_app.command("hf-tokenizer")
def hf_tokenizer_command(
    base: Path = typer.Option(..., "--base", help="Directory of a Hugging Face tokenizer to extend."),
    out: Path = typer.Option(..., "--out", help="Directory for the extended tokenizer."),
    codec: str = typer.Option(None, "--codec", help="Codec name (its codebooks define the audio tokens)."),
    store: Path = typer.Option(None, "--store", help="Or: a token store (its codec and n_q)."),
    vocab_file: Path = typer.Option(
        None, "--vocab", help="Or: an audio_vocab.json (or a directory holding one) built on this --base."
    ),
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to include (default: all)."),
) -> None:
    """Add audio tokens to a tokenizer: AutoTokenizer.from_pretrained(OUT) then encodes text and audio."""
    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.store import StoreError, TokenStore
    from codeclab.tokens.vocab import AudioVocab, VocabError

    if sum(x is not None for x in (codec, store, vocab_file)) != 1:
        fail("give one of --codec NAME, --store DIR or --vocab FILE")
    try:
        if vocab_file is not None:
            if n_q is not None:
                fail("--n-q does not apply with --vocab (the vocabulary fixes the codebooks)")
            vocab = export_hf_tokenizer(base, out, vocab=AudioVocab.load(vocab_file))
            q, k = vocab.num_codebooks, vocab.codebook_size
        elif store is not None:
            tokens = TokenStore(store)
            q, k = n_q or tokens.n_q, tokens.codebook_size
            meta = {"codec": tokens.metadata["codec"], "frame_rate": tokens.metadata["frame_rate"]}
        elif codec is not None:
            from codeclab.catalog.loading import codec_info

            entry = codec_info(codec)
            q, k = n_q or entry.num_codebooks, entry.codebook_size
            meta = {"codec": {"name": codec}, "frame_rate": entry.frame_rate}
        if vocab_file is None:
            vocab = export_hf_tokenizer(base, out, q, k, meta)
    except (OSError, ValueError, StoreError, VocabError, ImportError) as err:
        fail(err)
    console.print(
        f"{out}: base vocabulary {vocab.base_size} + {vocab.num_specials} special + {q} x {k} audio tokens "
        f"= {vocab.size}; layout in {out / 'audio_vocab.json'}"
    )


VOCAB_HELP = (
    "The vocabulary of input_ids: an audio_vocab.json, or the directory of a tokenizer made by "
    "`export hf-tokenizer` (so its ids decode with that tokenizer)."
)
AUDIO_ONLY_HELP = "Or: codeclab's own ids (from 0), for a model of audio alone (no text tokenizer)."
FRAMING_HELP = (
    "Frame input_ids as TokenDataset does: bos, audio_start, codes, audio_end, eos (flat patterns)."
)
TEXT_HELP = "before|after: put each item's text (tokenized by the --vocab / --base tokenizer) there; implies --framing."
BASE_HELP = "Or: build the vocabulary on this Hugging Face tokenizer, as `export hf-tokenizer --base` does."


def _parquet(
    store: Path,
    out: Path,
    rows_per_file: int,
    pattern: str | None,
    n_q: int | None,
    overwrite: bool,
    vocab_file: Path | None,
    base: Path | None,
    audio_only: bool = False,
    framing: bool = False,
    text: str | None = None,
) -> None:
    from codeclab.tokens.export import export_parquet, load_base_tokenizer
    from codeclab.tokens.store import StoreError
    from codeclab.tokens.vocab import AudioVocab

    try:
        vocab = AudioVocab.load(vocab_file) if vocab_file is not None else None
        # a tokenizer directory (export hf-tokenizer's): its tokenizer is checked against its vocabulary
        tokenizer = (
            load_base_tokenizer(vocab_file)
            if vocab_file is not None and (Path(vocab_file) / "tokenizer_config.json").is_file()
            else None
        )
        files = export_parquet(
            store,
            out,
            rows_per_file=rows_per_file,
            pattern=pattern,
            n_q=n_q,
            overwrite=overwrite,
            vocab=vocab,
            base=base,
            audio_only=audio_only,
            framing=framing,
            text=text,
            tokenizer=tokenizer,
        )
    except (OSError, ValueError, StoreError, ImportError) as err:
        fail(err)
    console.print(f"{out}: {len(files)} Parquet file(s); datasets.load_dataset('{out}')")
    if pattern is not None:
        used = AudioVocab.load(Path(out) / "audio_vocab.json")
        console.print(
            f"input_ids: {pattern} over the vocabulary in {Path(out) / 'audio_vocab.json'} (base_size "
            f"{used.base_size}, audio from id {used.audio_offset})"
            + (", framed as TokenDataset frames items" if framing or text else ", bare codes")
        )


@export_app.command("parquet")
def parquet_command(
    store: Path = typer.Argument(..., help="Token store."),
    out: Path = typer.Option(
        ..., "--out", help="Export directory (must not hold files this export did not write)."
    ),
    rows_per_file: int = typer.Option(10_000, "--rows-per-file", help="Rows per Parquet file."),
    pattern: str = typer.Option(
        None,
        "--pattern",
        help="Also write input_ids in this pattern (flatten, coarse_first, parallel, delay).",
    ),
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to export (default: all the store has)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier export's Parquet files in OUT/data (and nothing else)."
    ),
    vocab_file: Path = typer.Option(None, "--vocab", help=VOCAB_HELP),
    base: Path = typer.Option(None, "--base", help=BASE_HELP),
    audio_only: bool = typer.Option(False, "--audio-only", help=AUDIO_ONLY_HELP),
    framing: bool = typer.Option(False, "--framing", help=FRAMING_HELP),
    text: str = typer.Option(None, "--text", help=TEXT_HELP),
) -> None:
    """Write a store as Parquet files in the Hugging Face datasets layout (out/data/train-*.parquet)."""
    _parquet(store, out, rows_per_file, pattern, n_q, overwrite, vocab_file, base, audio_only, framing, text)


@export_app.command("datasets")
def datasets_command(
    store: Path = typer.Argument(..., help="Token store."),
    out: Path = typer.Option(
        ..., "--out", help="Export directory (must not hold files this export did not write)."
    ),
    rows_per_file: int = typer.Option(10_000, "--rows-per-file", help="Rows per Parquet file."),
    pattern: str = typer.Option(
        None, "--pattern", help="Codebook pattern of input_ids (default: codes only)."
    ),
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to export (default: all the store has)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export's Parquet files."),
    vocab_file: Path = typer.Option(None, "--vocab", help=VOCAB_HELP),
    base: Path = typer.Option(None, "--base", help=BASE_HELP),
    audio_only: bool = typer.Option(False, "--audio-only", help=AUDIO_ONLY_HELP),
    framing: bool = typer.Option(False, "--framing", help=FRAMING_HELP),
    text: str = typer.Option(None, "--text", help=TEXT_HELP),
) -> None:
    """The same as `export parquet`: a directory `datasets.load_dataset(OUT)` reads."""
    _parquet(store, out, rows_per_file, pattern, n_q, overwrite, vocab_file, base, audio_only, framing, text)


@export_app.command("bpe")
def bpe_command(
    store: Path = typer.Argument(..., help="Token store."),
    vocab_size: int = typer.Option(
        ..., "--vocab-size", help="Ids of the BPE vocabulary (specials + Q*K codes + merges)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Directory for the tokenizer (PreTrainedTokenizerFast) and audio_bpe.json."
    ),
    pattern: str = typer.Option(
        "flatten", "--pattern", help="flatten or coarse_first (BPE needs one stream)."
    ),
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to include (default: all the store has)."),
    base: Path = typer.Option(
        None,
        "--base",
        help="A local Hugging Face tokenizer directory to merge with: its ids stay, the audio ids follow.",
    ),
) -> None:
    """Acoustic BPE over a store's codes (HF tokenizers): fewer tokens per second for an LLM."""
    from codeclab.tokens.bpe import train_bpe
    from codeclab.tokens.store import StoreError

    try:
        bpe = train_bpe(store, vocab_size, out, pattern, n_q, base=base)
    except (OSError, ValueError, StoreError, ImportError) as err:
        fail(err)
    merged = f"text ids 0-{bpe.base_size - 1} of {base}, then " if bpe.base_size else ""
    console.print(
        f"{out}: {bpe.vocab_size} ids ({merged}{bpe.n_q} x {bpe.codebook_size} codes + merges, {bpe.pattern}); "
        f"PreTrainedTokenizerFast.from_pretrained('{out}'), codeclab.tokens.bpe.AudioBPE.load('{out}')"
    )


@export_app.command("lhotse")
def lhotse_command(
    store: Path = typer.Argument(..., help="Token store."),
    out: Path = typer.Option(..., "--out", help="New or empty directory for cuts.jsonl.gz and codes/."),
) -> None:
    """Write a store as lhotse cuts whose custom field `codes` is a TemporalArray ([frames, n_q])."""
    from codeclab.tokens.corpus_export import export_lhotse
    from codeclab.tokens.store import StoreError

    try:
        path = export_lhotse(store, out)
    except (OSError, ValueError, StoreError, ImportError) as err:
        fail(err)
    console.print(f"{path}: lhotse.CutSet.from_file('{path}'); cut.load_codes() -> [frames, n_q]")


@export_app.command("webdataset")
def webdataset_command(
    store: Path = typer.Argument(..., help="Token store."),
    out: Path = typer.Option(..., "--out", help="New or empty directory for the tar shards."),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Samples per tar shard."),
) -> None:
    """Write a store as WebDataset tar shards (codes.npy [n_q, frames] and json metadata per sample)."""
    from codeclab.tokens.corpus_export import export_webdataset
    from codeclab.tokens.store import StoreError

    try:
        shards = export_webdataset(store, out, shard_size)
    except (OSError, ValueError, StoreError, ImportError) as err:
        fail(err)
    last = f"{len(shards) - 1:06d}"
    console.print(
        f"{out}: {len(shards)} shard(s); webdataset.WebDataset('{out}/shard-{{000000..{last}}}.tar').decode()"
    )
