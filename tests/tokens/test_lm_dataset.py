import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset, collate_tokens, shard_order
from codeclab.tokens.store import ShardWriter, TokenRecord, TokenStore
from codeclab.tokens.vocab import AudioVocab
from tests.token_stores import store_meta

META = store_meta(3, 64)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    writer = ShardWriter(root, META)
    rng = np.random.default_rng(0)
    for i in range(23):
        frames = int(rng.integers(1, 30))
        codes = rng.integers(0, 64, size=(3, frames))
        writer.add(
            TokenRecord(
                f"utt{i:03d}",
                codes,
                f"/x/{i}.wav",
                "s",
                frames / 50,
                16000,
                text=f"text {i}" if i % 3 else None,
            )
        )
    writer.finish({})
    return TokenStore(root)


def test_map_style_items(store):
    ds = TokenDataset(store)
    item = ds[0]
    rec = store[item["id"]]
    vocab = ds.vocab
    assert item["input_ids"][0] == vocab.bos_id and item["input_ids"][-1] == vocab.eos_id
    assert torch.equal(vocab.from_ids(item["input_ids"]), rec.tensor())
    delay = TokenDataset(store, pattern="delay")[0]["input_ids"]
    assert delay.shape == (3, rec.num_frames + 2)


def test_text_interleaving(store):
    vocab = AudioVocab(3, 64, base_size=100)
    tokenizer = lambda text: [ord(c) % 100 for c in text]  # noqa: E731 - any str -> base ids callable
    ds = TokenDataset(store, vocab=vocab, text_tokenizer=tokenizer, text_position="before")
    item = ds[ds.ids.index("utt001")]
    ids = item["input_ids"].tolist()
    assert ids[1 : 1 + len("text 1")] == tokenizer("text 1")
    assert ids[1 + len("text 1")] == vocab.special("audio_start")
    after = TokenDataset(store, vocab=vocab, text_tokenizer=tokenizer, text_position="after")
    ids = after[after.ids.index("utt001")]["input_ids"].tolist()
    assert ids[-1 - len("text 1") : -1] == tokenizer("text 1")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 4), st.integers(1, 4), st.integers(0, 5), st.booleans())
def test_rank_and_worker_sharding_covers_every_item_once(n, world, workers, epoch, shuffle):
    seen = []
    for rank in range(world):
        for worker in range(workers):
            seen += shard_order(n, epoch, 7, shuffle, rank, world, worker, workers)
    assert sorted(seen) == list(range(n))


def test_packed_dataset_through_dataloader_workers(store):
    ds = TokenDataset(store)
    seen = []
    for rank in range(2):
        packed = PackedTokenDataset(
            ds, context_length=128, rank=rank, world_size=2, seed=3
        )  # every item fits
        loader = torch.utils.data.DataLoader(packed, batch_size=None, num_workers=2)
        for seq in loader:
            seen += seq["ids"]
    assert sorted(seen) == sorted(store.ids())  # every item exactly once over 2 ranks x 2 workers


@pytest.mark.parametrize("context", [20, 37, 64, 200])
def test_packing_never_splits_unless_asked(store, context):
    ds = TokenDataset(store)
    packed = PackedTokenDataset(ds, context_length=context, shuffle=True, seed=1)
    lengths = {i: ds[k]["input_ids"].shape[-1] for k, i in enumerate(ds.ids)}
    got = []
    for seq in packed:
        assert seq["input_ids"].shape == (context,)
        for item_id, (a, b) in zip(seq["ids"], seq["spans"]):
            assert b - a == lengths[item_id]  # whole item in one sequence
            assert torch.equal(seq["input_ids"][a:b], ds[ds.ids.index(item_id)]["input_ids"])
            got.append(item_id)
        assert int(seq["attention_mask"].sum()) == max(b for _, b in seq["spans"])
    too_long = sum(1 for n in lengths.values() if n > context)
    assert len(got) == len(lengths) - too_long and packed.skipped_long == too_long


def test_packing_with_splits_keeps_every_token(store):
    ds = TokenDataset(store)
    packed = PackedTokenDataset(ds, context_length=17, allow_split=True, shuffle=False)
    stream = torch.cat([seq["input_ids"][seq["attention_mask"].bool()] for seq in packed])
    expected = torch.cat([ds[k]["input_ids"] for k in range(len(ds))])
    assert torch.equal(stream, expected)


def test_epochs_reshuffle_deterministically(store):
    ds = TokenDataset(store)
    packed = PackedTokenDataset(ds, context_length=100, seed=5)
    first = [seq["ids"] for seq in packed]
    assert first == [seq["ids"] for seq in packed]
    packed.set_epoch(1)
    assert first != [seq["ids"] for seq in packed]


def test_collate_pads_and_masks(store):
    ds = TokenDataset(store)
    batch = collate_tokens([ds[0], ds[1], ds[2]], pad_id=ds.vocab.pad_id)
    lengths = [ds[i]["input_ids"].shape[0] for i in range(3)]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert bool((batch["labels"][batch["attention_mask"] == 0] == -100).all())
    delay = TokenDataset(store, pattern="delay")
    batch = collate_tokens([delay[0], delay[1]], pad_id=delay.vocab.pad_id)
    assert batch["input_ids"].ndim == 3 and batch["labels"].shape == batch["input_ids"].shape


def _text_tokens(text: str) -> list[int]:
    return [ord(c) % 50 for c in text]  # ids inside a base vocabulary of 50


def test_loss_masks_by_role_count_only_that_role(store):
    """TTS-style (text before, loss on audio) and ASR-style (audio before, loss on text): the labels keep
    exactly that role's tokens and eos; bos, padding and the other role are -100."""
    vocab = AudioVocab(3, 64, base_size=50)
    tts = TokenDataset(store, vocab, text_tokenizer=_text_tokens, text_position="before", loss_on="audio")
    asr = TokenDataset(store, vocab, text_tokenizer=_text_tokens, text_position="after", loss_on="text")
    item = next(i for i in range(len(tts)) if store[tts.ids[i]].text)
    for dataset, role_is_text in [(tts, False), (asr, True)]:
        row = dataset[item]
        ids, mask = row["input_ids"], row["loss_mask"]
        is_text = ids < vocab.base_size
        is_eos = ids == vocab.eos_id
        expected = ((is_text if role_is_text else ~is_text) | is_eos) & (ids != vocab.bos_id)
        assert torch.equal(mask, expected)
        batch = collate_tokens([row, dataset[item + 1]], vocab.pad_id)
        labels = batch["labels"][0, : len(ids)]
        assert torch.equal(labels[mask], ids[mask]) and bool((labels[~mask] == -100).all())
    with pytest.raises(ValueError, match="loss_on"):
        TokenDataset(store, vocab, loss_on="speech")


def test_packed_position_ids_restart_at_every_item(store):
    dataset = TokenDataset(store, pattern="flatten")
    packed = list(PackedTokenDataset(dataset, 200, shuffle=False))
    for sequence in packed:
        positions = sequence["position_ids"]
        for (start, stop), item_id in zip(sequence["spans"], sequence["ids"]):
            assert torch.equal(positions[start:stop], torch.arange(stop - start)), item_id
        stop = sequence["spans"][-1][1]
        assert bool((positions[stop:] == 0).all())
    batch = collate_tokens(packed[:2], dataset.vocab.pad_id)
    assert torch.equal(batch["position_ids"][0], packed[0]["position_ids"])


def test_an_iterable_source_packs_like_the_store(store):
    """A Hugging Face streaming dataset of the store feeds the same sequences as the store itself."""
    datasets = pytest.importorskip("datasets")
    from codeclab.tokens.lm_dataset import IterableTokenDataset

    vocab = AudioVocab.for_store(store)
    parts = str(store.path / "data" / "*.parquet")
    streamed = datasets.load_dataset("parquet", data_files=parts, split="train", streaming=True)
    ordered = sorted(streamed, key=lambda row: row["id"])
    from_rows = list(PackedTokenDataset(IterableTokenDataset(ordered, vocab), 150))
    from_store = list(PackedTokenDataset(TokenDataset(store, vocab), 150, shuffle=False))
    assert [s["ids"] for s in from_rows] == [s["ids"] for s in from_store]
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(from_rows, from_store))
    seen = []
    for rank in range(3):
        seen += [row["id"] for row in IterableTokenDataset(ordered, vocab, rank=rank, world_size=3)]
    assert sorted(seen) == store.ids()


def test_a_vocabulary_with_fewer_codebooks_suggests_n_q(store):
    from codeclab.tokens.vocab import VocabError

    with pytest.raises(VocabError, match=r"pass n_q=2 to read the first 2"):
        TokenDataset(store, AudioVocab(2, 64))
    assert len(TokenDataset(store, AudioVocab(2, 64), n_q=2)[0]["input_ids"]) > 0
