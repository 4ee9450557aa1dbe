"""Shuffled reads of a token store: every item once with its own codes, whatever the order, the window or
the cache size; a flipped byte is still caught on the shuffled path."""

import numpy as np
import pytest

from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset
from codeclab.tokens.store import ShardWriter, StoreError, TokenRecord, TokenStore, merge
from tests.token_stores import store_meta

META = store_meta(n_q=2, codebook_size=1024)


@pytest.fixture
def store(tmp_path):
    """60 items over 6 parts, each item's codes derived from its number."""
    writer = ShardWriter(tmp_path, META)
    expected = {}
    for i in range(60):
        codes = (np.arange(2 * (5 + i % 7)).reshape(2, -1) * 7 + i) % 1024
        record = TokenRecord(
            f"u{i:03d}", codes, f"/x/{i}.wav", "s", codes.shape[1] / 50, 16000, meta={"n": i}
        )
        writer.add(record)
        expected[record.id] = codes
        if i % 10 == 9:
            writer.flush()
    writer.finish({})
    merge(tmp_path)
    return tmp_path, expected


@pytest.mark.parametrize("window", [1, 2, 4, 100])
def test_shuffled_returns_every_item_once_with_its_codes(store, window):
    path, expected = store
    tokens = TokenStore(path, cache_mb=0.001)  # the cache holds one part: every part switch is a miss
    seen = [(r.id, r.codes, r.meta) for r in tokens.shuffled(seed=3, window=window)]
    assert sorted(i for i, _, _ in seen) == sorted(expected)
    assert [i for i, _, _ in seen] != sorted(expected)  # an order, not the stored one
    for item_id, codes, meta in seen:
        assert np.array_equal(codes, expected[item_id]) and meta == {"n": int(item_id[1:])}
    assert tokens.shuffled_ids(seed=3, window=window) == tokens.shuffled_ids(seed=3, window=window)


def test_random_access_in_any_order_equals_sequential(store):
    path, expected = store
    tokens = TokenStore(path, cache_mb=0.001)
    order = np.random.default_rng(0).permutation(sorted(expected))
    for item_id in order:
        assert np.array_equal(tokens[item_id].codes, expected[item_id])
    assert [r.id for r in tokens] == sorted(expected)


def test_a_returned_record_does_not_share_memory_with_the_cache(store):
    path, expected = store
    tokens = TokenStore(path)
    tokens["u001"].codes[:] = 0
    assert np.array_equal(tokens["u001"].codes, expected["u001"])


def test_a_flipped_byte_is_caught_on_the_shuffled_path(store):
    path, _ = store
    part = sorted((path / "data").glob("part-*.parquet"))[2]
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0x10
    part.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=part.name):
        list(TokenStore(path).shuffled(seed=0, window=2))


def test_packed_dataset_with_a_shuffle_window_reads_every_item_once(store):
    path, expected = store
    dataset = TokenDataset(TokenStore(path), pattern="flatten")
    seen = []
    for consumer in range(2):
        packed = PackedTokenDataset(dataset, 64, rank=consumer, world_size=2, shuffle_window=2, seed=1)
        seen += [i for sequence in packed for i in sequence["ids"]]
    assert sorted(seen) == sorted(expected)
    with pytest.raises(ValueError, match="shuffle_window"):
        PackedTokenDataset(dataset, 64, shuffle_window=0)
