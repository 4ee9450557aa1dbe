"""`codeclab export ...`: hand tokens to LLM tooling (Hugging Face tokenizers, Parquet / datasets)."""

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
    n_q: int = typer.Option(None, "--n-q", help="Codebooks to include (default: all)."),
) -> None:
    """Add audio tokens to a tokenizer: AutoTokenizer.from_pretrained(OUT) then encodes text and audio."""
    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.store import StoreError, TokenStore
    from codeclab.tokens.vocab import VocabError

    try:
        if store is not None:
            tokens = TokenStore(store)
            q, k = n_q or tokens.n_q, tokens.codebook_size
            meta = {"codec": tokens.metadata["codec"], "frame_rate": tokens.metadata["frame_rate"]}
        elif codec is not None:
            from codeclab.codecs.loading import codec_info

            entry = codec_info(codec)
            q, k = n_q or entry.num_codebooks, entry.codebook_size
            meta = {"codec": {"name": codec}, "frame_rate": entry.frame_rate}
        else:
            fail("give --codec NAME or --store DIR")
        vocab = export_hf_tokenizer(base, out, q, k, meta)
    except (OSError, ValueError, StoreError, VocabError, ImportError) as err:
        fail(str(err))
    console.print(
        f"{out}: base vocabulary {vocab.base_size} + {vocab.num_specials} special + {q} x {k} audio tokens "
        f"= {vocab.size}; layout in {out / 'audio_vocab.json'}"
    )


def _parquet(
    store: Path, out: Path, rows_per_file: int, pattern: str | None, n_q: int | None, overwrite: bool
) -> None:
    from codeclab.tokens.export import export_parquet
    from codeclab.tokens.store import StoreError

    try:
        files = export_parquet(
            store, out, rows_per_file=rows_per_file, pattern=pattern, n_q=n_q, overwrite=overwrite
        )
    except (OSError, ValueError, StoreError, ImportError) as err:
        fail(str(err))
    console.print(
        f"{out}: {len(files)} Parquet file(s); datasets.load_dataset('parquet', data_files='{out}/data/*.parquet')"
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
) -> None:
    """Write a store as Parquet files in the Hugging Face datasets layout (out/data/train-*.parquet)."""
    _parquet(store, out, rows_per_file, pattern, n_q, overwrite)


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
) -> None:
    """The same as `export parquet`: a directory `datasets.load_dataset(OUT)` reads."""
    _parquet(store, out, rows_per_file, pattern, n_q, overwrite)
