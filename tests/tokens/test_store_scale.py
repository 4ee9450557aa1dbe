"""Corpus-scale store pieces: the merge is incremental (unchanged parts are neither read nor hashed
again, and the result equals a merge from scratch), and the reader's compact index answers as a dict."""

import numpy as np
import pytest

import codeclab.tokens.store_merge as store_module
from codeclab.tokens.store import INDEX_FILE, ShardWriter, TokenRecord, TokenStore, merge
from codeclab.tokens.store_index import StoreIndex
from tests.token_stores import store_meta

META = store_meta(n_q=2, codebook_size=64)


def write_items(path, names, shard=(0, 1), finish=True):
    writer = ShardWriter(path, META, *shard)
    for n, name in enumerate(names):
        codes = (np.arange(8).reshape(2, 4) + n) % 64
        writer.add(TokenRecord(name, codes, f"/x/{name}.wav", "s", 0.08, 16000))
        writer.flush()
    if finish:
        writer.finish({})
    else:
        writer.close()


def test_merge_is_incremental_and_equals_a_merge_from_scratch(tmp_path, monkeypatch):
    path = tmp_path / "s"
    write_items(path, ["a", "b", "c"], shard=(0, 2))
    merge(path)
    hashed = []
    real = store_module.sha256_file
    monkeypatch.setattr(store_module, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    merge(path)
    assert hashed == []  # nothing changed: no part read or hashed again
    write_items(path, ["b", "d"], shard=(1, 2))  # another shard: a new id and a duplicate of "b"
    counts = merge(path)
    assert sorted(hashed) == ["part-00001-of-00002-000000.parquet", "part-00001-of-00002-000001.parquet"]
    assert counts == {"items": 4, "errors": 0, "duplicates": 1}
    incremental = {r.id: r.codes.tolist() for r in TokenStore(path)}
    (path / INDEX_FILE).unlink()
    assert merge(path) == counts  # from scratch
    assert {r.id: r.codes.tolist() for r in TokenStore(path)} == incremental
    assert TokenStore(path)["b"].path == "/x/b.wav" and len(incremental) == 4


def test_a_part_changed_after_the_merge_is_hashed_again(tmp_path, monkeypatch):
    path = tmp_path / "s"
    write_items(path, ["a", "b"])
    merge(path)
    part = sorted((path / "data").glob("part-*.parquet"))[0]
    data = part.read_bytes()
    part.write_bytes(data)  # same bytes, new mtime
    hashed = []
    real = store_module.sha256_file
    monkeypatch.setattr(store_module, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    merge(path)
    assert hashed == [part.name]


def test_store_index_answers_like_a_dict():
    pairs = {f"id{i:03d}": (f"data/part-{i % 3}.parquet", i // 3) for i in (5, 1, 9, 3, 0, 7)}
    index = StoreIndex(list(pairs), [f for f, _ in pairs.values()], [r for _, r in pairs.values()])
    assert len(index) == 6 and index.keys() == sorted(pairs)
    for item_id, value in pairs.items():
        assert item_id in index and index[item_id] == value
    assert "id002" not in index and 5 not in index and index.get("nope") is None
    with pytest.raises(KeyError):
        index["nope"]
    by_part = index.rows_by_part()
    assert by_part["data/part-0.parquet"] == [(0, "id000"), (1, "id003"), (3, "id009")]
    assert dict(index.items()) == pairs
