"""StoreLayout: the one place a store's paths are spelled, and what the writers put there."""

from __future__ import annotations

import numpy as np

from codeclab.tokens.store import ShardWriter, StoreLayout, TokenRecord, TokenStore, merge
from tests.token_stores import store_meta


def test_every_file_a_store_holds_is_where_its_layout_says(tmp_path):
    meta = store_meta(2, 16)
    for shard in (0, 1):
        writer = ShardWriter(tmp_path, meta, shard, 2)
        writer.add(TokenRecord(f"a{shard}", np.zeros((2, 3), np.int64), f"/x/{shard}.wav", "s", 0.06, 16000))
        writer.add_error(f"bad{shard}", f"/x/bad{shard}.wav", "unreadable")
        writer.finish({})
    merge(tmp_path)
    layout = StoreLayout(tmp_path)
    assert layout.is_store() and layout.root == tmp_path
    assert {p.name for p in tmp_path.iterdir()} <= set(layout.names())
    for shard in (0, 1):
        assert layout.part(shard, 2, 0).is_file()  # its first flush
        assert layout.error_log(shard, 2).is_file()
        assert layout.done_marker(shard, 2).is_file()
        assert layout.lock(shard, 2).is_file()
    assert layout.error_logs() == [layout.error_log(0, 2), layout.error_log(1, 2)]
    assert (
        layout.index.is_file()
        and layout.errors.is_file()
        and layout.stats.is_file()
        and layout.card.is_file()
    )
    assert [row["id"] for row in TokenStore(tmp_path).errors()] == ["bad0", "bad1"]


def test_an_older_store_index_is_read_until_a_merge_replaces_it(tmp_path):
    layout = StoreLayout(str(tmp_path))  # a str root works as a Path
    assert layout.index == tmp_path / "index.pq"
    layout.legacy_index.write_bytes(b"")
    assert layout.index == tmp_path / "index.parquet"
    layout.index_to_write.write_bytes(b"")
    assert layout.index == tmp_path / "index.pq"
