"""R7, R12, R24 (reliability report 2026-12-04): exports never overwrite files they did not write, absurd
BPE sizes are a clear error, and a missing base directory is not taken for a hub id."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.token_stores import store_meta, write_store

pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    return write_store(
        tmp_path / "store", store_meta(2, 16), [rng.integers(0, 16, (2, 40)) for _ in range(6)]
    )


def test_parquet_export_refuses_files_it_did_not_write(store, tmp_path):
    from codeclab.tokens.export import ExportError, export_parquet

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my own notes")
    with pytest.raises(ExportError, match="README.md"):
        export_parquet(store, mine)
    assert (mine / "README.md").read_text() == "my own notes"
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    (other / "data" / "train-00000-of-00003.parquet").write_bytes(b"someone else's")
    with pytest.raises(ExportError, match="codeclab_tokens.json"):
        export_parquet(store, other, overwrite=True)
    assert (other / "data" / "train-00000-of-00003.parquet").read_bytes() == b"someone else's"
    ours = tmp_path / "ours"
    export_parquet(store, ours)
    export_parquet(store, ours, overwrite=True)  # an earlier export of ours is replaced


def test_tokenizer_exports_never_overwrite_the_base_or_a_store(store, tmp_path, base_tokenizer):
    from codeclab.tokens.bpe import BPEError, train_bpe
    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.vocab import VocabError

    before = (base_tokenizer / "tokenizer.json").read_bytes()
    with pytest.raises(VocabError, match="base tokenizer's directory"):
        export_hf_tokenizer(base_tokenizer, base_tokenizer, num_codebooks=2, codebook_size=16)
    with pytest.raises(BPEError, match="base tokenizer's directory"):
        train_bpe(store, 40, base_tokenizer, n_q=1, base=base_tokenizer)
    with pytest.raises(BPEError, match="token store"):
        train_bpe(store, 40, store, n_q=1)
    assert (base_tokenizer / "tokenizer.json").read_bytes() == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "vocab.json").write_text("{}")
    with pytest.raises(BPEError, match="did not write"):
        train_bpe(store, 40, notes, n_q=1)
    train_bpe(store, 40, tmp_path / "bpe", n_q=1)
    train_bpe(store, 40, tmp_path / "bpe", n_q=1)  # its own earlier export is replaced


def test_absurd_bpe_sizes_are_a_clear_error(store, tmp_path):
    from codeclab.tokens.bpe import BPEError, train_bpe

    with pytest.raises(BPEError, match="merges"):
        train_bpe(store, 1_000_000_000, tmp_path / "b", n_q=1)


def test_a_missing_base_is_refused_at_once(store, tmp_path):
    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.vocab import VocabError

    started = time.perf_counter()
    with pytest.raises(VocabError, match="no such directory"):
        export_hf_tokenizer(tmp_path / "nobase", tmp_path / "out", num_codebooks=2, codebook_size=16)
    assert time.perf_counter() - started < 5
