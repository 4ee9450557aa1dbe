import json

import numpy as np
import pytest

from codeclab.tokens.store import ShardWriter, StoreError, TokenRecord, TokenStore, merge

META = {
    "codec": {"name": "x", "config_sha256": "c", "weights_sha256": "w"},
    "sample_rate": 16000,
    "channels": 1,
    "hop_length": 320,
    "frame_rate": 50.0,
    "n_q": 2,
    "codebook_size": 1024,
    "codes_dtype": "int16",
}


def record(i: int, frames: int) -> TokenRecord:
    codes = np.random.default_rng(i).integers(0, 1024, size=(2, frames))
    return TokenRecord(
        f"item{i:02d}",
        codes,
        f"/data/{i}.wav",
        "ab" * 32,
        frames / 50,
        16000,
        text=f"text {i}" if i % 2 else None,
    )


def test_write_read_round_trip(tmp_path):
    writer = ShardWriter(tmp_path, META)
    records = [record(i, 10 + i) for i in range(7)]
    for r in records[:4]:
        writer.add(r)
    writer.flush()
    for r in records[4:]:
        writer.add(r)
    writer.add_error("broken", "/data/broken.wav", "unreadable")
    writer.finish({})
    merge(tmp_path)
    store = TokenStore(tmp_path)
    assert len(store) == 7 and store.ids() == [r.id for r in records]
    for r in records:
        got = store[r.id]
        assert got.codes.dtype == np.int16 and np.array_equal(got.codes, r.codes)
        assert got.text == r.text and got.duration == pytest.approx(r.duration)
    assert sorted(r.id for r in store) == store.ids()
    assert [e["id"] for e in store.errors()] == ["broken"]
    assert store.total_duration() == pytest.approx(sum(r.duration for r in records))
    assert "item03" in store and "nope" not in store
    with pytest.raises(KeyError):
        store["nope"]


def test_int32_codes_for_large_codebooks(tmp_path):
    meta = {**META, "n_q": 1, "codebook_size": 65536, "codes_dtype": "int32"}
    writer = ShardWriter(tmp_path, meta)
    codes = np.array([[65535, 0, 40000]])
    writer.add(TokenRecord("a", codes, "p", "s", 0.06, 16000))
    writer.finish({})
    assert TokenStore(tmp_path)["a"].codes.dtype == np.int32
    assert TokenStore(tmp_path)["a"].codes.tolist() == codes.tolist()


def test_reader_works_before_merge(tmp_path):
    writer = ShardWriter(tmp_path, META)
    writer.add(record(1, 5))
    writer.flush()
    assert TokenStore(tmp_path).ids() == ["item01"]


def test_incompatible_runs_refuse_to_mix(tmp_path):
    ShardWriter(tmp_path, META)
    with pytest.raises(StoreError, match="n_q"):
        ShardWriter(tmp_path, {**META, "n_q": 3})
    with pytest.raises(StoreError, match="weights_sha256"):
        ShardWriter(tmp_path, {**META, "codec": {**META["codec"], "weights_sha256": "other"}})


def test_torn_error_line_is_ignored(tmp_path):
    writer = ShardWriter(tmp_path, META)
    writer.add_error("a", "p", "bad")
    with open(writer.errors_path, "a") as fh:
        fh.write('{"id": "b", "pa')  # a crash mid-line
    writer.finish({})
    assert merge(tmp_path)["errors"] == 1


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no tokens.json"):
        TokenStore(tmp_path)
    (tmp_path / "tokens.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(StoreError, match="not a codeclab token store"):
        TokenStore(tmp_path)


def test_error_lines_stay_valid_json_for_non_finite_times(tmp_path):
    writer = ShardWriter(tmp_path, META)
    writer.add_error("a", "p", "invalid segment", float("nan"), float("inf"))
    line = writer.errors_path.read_text().splitlines()[0]
    record = json.loads(line)  # json.dumps would write NaN, which JSON readers refuse
    assert (record["start"], record["end"]) == ("nan", "inf")
    assert "NaN" not in line


@pytest.mark.parametrize("codes_dtype", ["int16", "int32"])
def test_hugging_face_datasets_reads_a_store_as_a_train_split(tmp_path, codes_dtype):
    """load_dataset(STORE) gives a `train` split (from the card's YAML), the codes in their stored
    integer type, and the same rows streamed; no `*.parquet` glob of the store catches the index."""
    datasets = pytest.importorskip("datasets", reason="the llm extra (datasets) is not installed")
    meta = dict(META, codes_dtype=codes_dtype, codebook_size=1024 if codes_dtype == "int16" else 40000)
    writer = ShardWriter(tmp_path, meta)
    for i in range(5):
        writer.add(record(i, 6 + i))
    writer.finish({})
    merge(tmp_path)
    assert all(p.parent.name == "data" for p in tmp_path.rglob("*.parquet"))
    loaded = datasets.load_dataset(str(tmp_path))
    assert list(loaded) == ["train"]
    train = loaded["train"]
    assert train.features["codes"].feature.feature.dtype == codes_dtype
    store = TokenStore(tmp_path)
    assert sorted(train["id"]) == store.ids()
    for row in train:
        assert np.array_equal(np.array(row["codes"]), store[row["id"]].codes)
    streamed = datasets.load_dataset(str(tmp_path), split="train", streaming=True)
    assert sorted(row["id"] for row in streamed) == store.ids()
    globbed = datasets.load_dataset("parquet", data_files=str(tmp_path / "**" / "*.parquet"), split="train")
    assert globbed.num_rows == 5


def test_an_older_store_with_index_parquet_still_reads_and_merge_renames_it(tmp_path):
    from codeclab.tokens.store import INDEX_FILE, LEGACY_INDEX_FILE

    writer = ShardWriter(tmp_path, META)
    for i in range(3):
        writer.add(record(i, 5))
    writer.finish({})
    merge(tmp_path)
    (tmp_path / INDEX_FILE).rename(tmp_path / LEGACY_INDEX_FILE)  # as codeclab wrote it before
    store = TokenStore(tmp_path)
    assert store._checksums and len(store) == 3  # the old index was used (it carries the checksums)
    merge(tmp_path)
    assert (tmp_path / INDEX_FILE).is_file() and not (tmp_path / LEGACY_INDEX_FILE).exists()


def test_merge_records_code_statistics_of_the_kept_items(tmp_path):
    """stats.json: per-codebook entropy and usage over every item once, from the parts' recorded counts
    (an item written twice, as after a killed run, counts once)."""
    from codeclab.tokens.store import STATS_FILE, code_counts, code_statistics

    records = [record(i, 20 + i) for i in range(5)]
    writer = ShardWriter(tmp_path, META)
    for r in records[:3]:
        writer.add(r)
    writer.flush()
    for r in records[2:]:  # item02 again in the second part: the first part's copy is kept
        writer.add(r)
    writer.finish({})
    merge(tmp_path)
    stats = json.loads((tmp_path / STATS_FILE).read_text())
    expected = code_statistics(code_counts([r.codes for r in records], 2, 1024), 50.0)
    assert stats["items"] == 5 and stats["frames"] == sum(r.codes.shape[1] for r in records)
    assert stats["per_codebook"] == expected["per_codebook"]
    assert stats["entropy_kbps"] == expected["entropy_kbps"]
    bits = [c["entropy_bits"] for c in stats["per_codebook"]]
    assert all(0 < b <= np.log2(stats["frames"]) for b in bits)  # fewer codes than 1024 were drawn
