"""R2, R4, R13 (reliability report 2026-12-04): a store never serves, exports or merges fewer items than it
holds without an error, and its index never points outside its own checked parts."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from codeclab.pipelines.tokenize import tokenize_corpus
from codeclab.tokens.store import StoreError, TokenStore, index_is_fresh, merge, part_files


@pytest.fixture
def store(good_corpus, tmp_path):
    from tests.pipelines.test_tokenize import options

    out = tmp_path / "store"
    tokenize_corpus(options([good_corpus], out, flush_items=2, batch_seconds=1.0))
    assert len(part_files(out)) >= 2
    return out


def test_a_missing_part_is_an_error_for_readers_exports_and_merge(store, tmp_path):
    from codeclab.tokens.export import export_parquet

    victim = part_files(store)[0]
    victim.unlink()
    with pytest.raises(StoreError, match=f"{victim.name}: this part of the store is missing"):
        TokenStore(store)
    with pytest.raises(StoreError, match="missing"):
        export_parquet(store, tmp_path / "export")
    with pytest.raises(StoreError, match="missing"):
        merge(store)


def test_an_index_pointing_outside_the_store_is_refused(store, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(store, evil / "copy")
    index_file = store / "index.pq"
    table = pq.read_table(index_file)
    files = [f"../evil/copy/{f}" for f in table.column("file").to_pylist()]
    table = table.set_column(table.schema.get_field_index("file"), "file", pa.array(files))
    pq.write_table(table, index_file)  # the checksum metadata is kept
    with pytest.raises(StoreError, match="not a part of this store"):
        TokenStore(store)


def test_a_part_written_during_a_merge_leaves_the_index_stale(store, monkeypatch):
    """The merge lists the parts once: a part that lands while it runs gets neither rows nor a checksum,
    so the index is not fresh and the next reader or --resume covers it."""
    import codeclab.tokens.store_merge as store_module  # the merge's own reader of parts

    (store / "index.pq").unlink()  # as before the first merge
    parts = part_files(store)
    late = parts[-1]
    hidden = late.with_name("hidden")
    late.rename(hidden)
    real = store_module.part_columns
    calls = []

    def part_columns(part, columns):
        if not calls:  # while the merge reads its first part, another run renames its part into place
            hidden.rename(late)
        calls.append(part)
        return real(part, columns)

    monkeypatch.setattr(store_module, "part_columns", part_columns)
    merge(store)
    monkeypatch.undo()
    assert not index_is_fresh(store)
    assert len(TokenStore(store)) == sum(len(pq.read_table(p, columns=["id"])) for p in part_files(store))
