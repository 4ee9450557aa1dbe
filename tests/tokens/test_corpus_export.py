"""A store exported as lhotse cuts, WebDataset shards and split Parquet files: each read back by its own
library (lhotse, webdataset, datasets) alone, with the store's codes and the items' metadata."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codeclab.catalog.ref import CodecRef
from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
from codeclab.tokens.corpus_export import export_lhotse, export_webdataset, webdataset_key
from codeclab.tokens.export import export_parquet
from codeclab.tokens.store import StoreError, TokenStore

ROWS = [
    ("spk1/a.wav", 0.5, {"speaker": "ann", "split": "train", "language": "en"}, "one"),
    ("spk1/b.wav", 0.8, {"speaker": "ann", "split": "test", "language": "en"}, None),
    ("spk2/c%d.wav", 0.3, {"speaker": "bob", "split": "train", "snr": 12.5}, "three"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("meta-corpus")
    rng = np.random.default_rng(1)
    with open(root / "m.jsonl", "w") as fh:
        for item_id, seconds, meta, text in ROWS:
            file = root / item_id.replace("%", "pct")
            file.parent.mkdir(exist_ok=True)
            sf.write(file, (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
            row = {"id": item_id, "path": str(file), **meta} | ({"text": text} if text else {})
            fh.write(json.dumps(row) + "\n")
    out = root / "store"
    codec = CodecRef("codeclab-tiny", random_init=True)
    tokenize_corpus(TokenizeOptions(inputs=[str(root / "m.jsonl")], out=out, codec=codec, workers=0))
    return out


def test_lhotse_alone_loads_the_exported_cuts_and_codes(store, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    path = export_lhotse(store, tmp_path / "lh")
    tokens = TokenStore(store)
    cuts = lhotse.CutSet.from_file(path).to_eager()
    assert sorted(c.id for c in cuts) == tokens.ids()
    for cut in cuts:
        record = tokens[cut.id]
        assert np.array_equal(cut.load_codes(), record.codes.T)  # [frames, n_q]
        assert cut.codes.frame_shift == pytest.approx(1 / tokens.frame_rate)
        assert cut.duration == pytest.approx(record.duration)
        assert cut.recording is not None and cut.recording.sources[0].source == record.path
    cut = cuts["spk1/a.wav"]
    assert cut.supervisions[0].text == "one" and cut.supervisions[0].speaker == "ann"
    assert cut.custom["split"] == "train" and cuts["spk2/c%d.wav"].custom["snr"] == 12.5


def test_webdataset_alone_reads_the_exported_shards(store, tmp_path):
    wds = pytest.importorskip("webdataset")
    shards = export_webdataset(store, tmp_path / "wds", shard_size=2)
    assert [p.name for p in shards] == ["shard-000000.tar", "shard-000001.tar"]
    tokens = TokenStore(store)
    urls = str(tmp_path / "wds" / "shard-{000000..000001}.tar")
    seen = {}
    for sample in wds.WebDataset(urls, shardshuffle=False).decode():
        meta = sample["json"]
        assert sample["__key__"] == webdataset_key(meta["id"])
        seen[meta["id"]] = (sample["codes.npy"], meta)
    assert sorted(seen) == tokens.ids()
    for item_id, (codes, _) in seen.items():
        assert np.array_equal(codes, tokens[item_id].codes) and codes.dtype == tokens[item_id].codes.dtype
    assert seen["spk1/b.wav"][1]["split"] == "test" and seen["spk1/a.wav"][1]["text"] == "one"


def test_parquet_export_has_metadata_columns_and_one_split_per_value(store, tmp_path):
    datasets = pytest.importorskip("datasets")
    export_parquet(store, tmp_path / "pq")
    names = sorted(p.name for p in (tmp_path / "pq" / "data").iterdir())
    assert names == ["test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    loaded = datasets.load_dataset(str(tmp_path / "pq"))
    assert sorted(loaded) == ["test", "train"]
    assert loaded["test"]["id"] == ["spk1/b.wav"] and loaded["test"]["speaker"] == ["ann"]
    train = loaded["train"]
    assert train["id"] == ["spk1/a.wav", "spk2/c%d.wav"] and train["snr"] == [None, 12.5]
    assert train["language"] == ["en", None]
    tokens = TokenStore(store)
    assert train["codes"][1] == tokens["spk2/c%d.wav"].codes.tolist()


def test_exports_refuse_a_folder_with_files(store, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an empty directory"):
        export_webdataset(store, tmp_path / "x")
    with pytest.raises(StoreError, match="not an empty directory"):
        export_lhotse(store, tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
