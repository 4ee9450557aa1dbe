"""A token store under faults and tampering: no wrong codes served silently, every error names the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from codeclab.tokens.store import ShardWriter, StoreError, TokenRecord, TokenStore, merge
from tests.tokens.test_store import META, record


def build(path, items: int = 12, parts: int = 3):
    writer = ShardWriter(path, META)
    for i in range(items):
        writer.add(record(i, 20 + i))
        if (i + 1) % (items // parts) == 0:
            writer.flush()
    writer.finish({})
    merge(path)
    return {r.id: r.codes.tolist() for r in TokenStore(path)}


def read_all(path) -> dict:
    store = TokenStore(path)
    return {item_id: store[item_id].codes.tolist() for item_id in store.ids()}


def test_two_writers_on_one_shard_are_refused(tmp_path):
    first = ShardWriter(tmp_path, META)
    with pytest.raises(StoreError, match="being written by another run"):
        ShardWriter(tmp_path, META)
    first.finish({})
    ShardWriter(tmp_path, META).close()  # released by finish()


@pytest.mark.parametrize("merged", [True, False])
def test_byte_flips_in_a_part_never_serve_wrong_codes(tmp_path, merged):
    _flip_bytes(tmp_path, merged, trials=150, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("merged", [True, False])
def test_many_more_byte_flips_never_serve_wrong_codes(tmp_path, merged):
    _flip_bytes(tmp_path, merged, trials=2000, seed=1)


def _flip_bytes(tmp_path, merged: bool, trials: int, seed: int) -> None:
    """Flip one random byte of a part per trial (fixed seed): the read raises a StoreError naming the part
    or index, or serves exactly the right codes; with an index every flip is caught by its sha256."""
    clean = tmp_path / "clean"
    expected = build(clean)
    part = sorted((clean / "data").glob("part-*.parquet"))[1]
    size = part.stat().st_size
    rng = np.random.default_rng(seed)
    caught = silent_ok = 0
    for trial in range(trials):
        store = tmp_path / f"t{trial}"
        shutil.rmtree(tmp_path / f"t{trial - 1}", ignore_errors=True)
        shutil.copytree(clean, store)
        if not merged:
            (store / "index.pq").unlink()
        target = store / "data" / part.name
        data = bytearray(target.read_bytes())
        data[int(rng.integers(0, size))] ^= int(rng.integers(1, 256))
        target.write_bytes(bytes(data))
        try:
            got = read_all(store)
        except StoreError as err:
            assert "part-" in str(err) or "index" in str(err), err
            caught += 1
            continue
        assert got == expected  # a flip the reader did not notice must not change a single code
        silent_ok += 1
    if merged:
        assert caught == trials  # the index's sha256 of every part catches every flip
    assert caught > 0


def test_rotated_index_rows_are_caught(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    build(tmp_path)
    index = pq.read_table(tmp_path / "index.pq")
    rotated = index.set_column(
        0, "id", pa.array(index.column("id").to_pylist()[1:] + index.column("id").to_pylist()[:1])
    )
    pq.write_table(rotated.replace_schema_metadata(index.schema.metadata), tmp_path / "index.pq")
    store = TokenStore(tmp_path)
    with pytest.raises(StoreError, match="holds 'item\\d+', but the index points"):
        store[store.ids()[0]]


def _hand_written_part(path, codes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    build(path, items=3, parts=1)
    part = next((path / "data").glob("part-*.parquet"))
    table = pq.read_table(part)
    rows = table.to_pylist()
    rows[0]["codes"] = codes
    rows[0]["num_frames"] = len(codes[0])
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    (path / "index.pq").unlink()  # the reader scans the parts
    return rows[0]["id"]


@pytest.mark.parametrize(
    ("codes", "message"),
    [([[5, 2000, 3], [1, 2, 3]], r"codes outside \[0, 1024\)"), ([[5, 6, 7]], "the store has 2 codebooks")],
)
def test_codes_out_of_range_or_missing_codebooks_are_caught(tmp_path, codes, message):
    item = _hand_written_part(tmp_path, codes)
    with pytest.raises(StoreError, match=f"part-00000-of-00001-000000.parquet row 0: .*{message}"):
        TokenStore(tmp_path)[item]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(n_q="2"), r"n_q must be an integer in \[1, 256\], got '2'"),
        (lambda m: m.pop("codebook_size"), "codebook_size must be an integer"),
        (lambda m: m.update(codec="x"), "codec must be an object"),
        (lambda m: m.update(codes_dtype="float32"), "codes_dtype must be"),
        (lambda m: m.update(frame_rate=None), "frame_rate must be a positive number"),
        (lambda m: m.update(format_version="1"), "format_version must be an integer"),
    ],
)
def test_malformed_tokens_json_is_a_store_error(tmp_path, change, message):
    build(tmp_path)
    meta = json.loads((tmp_path / "tokens.json").read_text())
    change(meta)
    (tmp_path / "tokens.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=message):
        TokenStore(tmp_path)
    (tmp_path / "tokens.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="not a codeclab token store"):
        TokenStore(tmp_path)


def test_writer_refuses_codes_the_store_cannot_hold(tmp_path):
    writer = ShardWriter(tmp_path, META)
    with pytest.raises(StoreError, match=r"codes of shape \(1, 4\)"):
        writer.add(TokenRecord("a", np.zeros((1, 4), dtype=np.int64), "p", "s", 0.08, 16000))
    with pytest.raises(StoreError, match=r"codes outside \[0, 1024\)"):
        writer.add(TokenRecord("a", np.full((2, 4), 1024), "p", "s", 0.08, 16000))
    writer.close()


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path):
    build(tmp_path)
    stale = tmp_path / "data" / ".part-00000-of-00001-000009.parquet.k2j3.tmp"
    stale.write_bytes(b"half a part")
    other_shard = tmp_path / "data" / ".part-00001-of-00002-000001.parquet.x.tmp"
    other_shard.write_bytes(b"another shard's")
    ShardWriter(tmp_path, META).close()
    assert not stale.exists() and other_shard.exists()
