import re

import numpy as np
import pytest
import torch

from codeclab.tokens.store import ShardWriter, TokenRecord, TokenStore
from tests.token_stores import store_meta

transformers = pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")
tokenizers = pytest.importorskip("tokenizers")

META = store_meta(2, 100)


def test_exported_tokenizer_round_trips_text_and_audio(base_tokenizer, tmp_path):
    from codeclab.tokens.export import audio_text, export_hf_tokenizer

    vocab = export_hf_tokenizer(base_tokenizer, tmp_path / "out", num_codebooks=3, codebook_size=50)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert len(tok) == vocab.size
    codes = torch.randint(0, 50, (3, 12))
    audio = vocab.to_ids(codes, markers=True)
    text = "hello world" + audio_text(vocab, audio) + " the lazy dog"
    ids = tok.encode(text, add_special_tokens=False)
    prefix = tok.encode("hello world", add_special_tokens=False)
    assert ids[: len(prefix)] == prefix and max(prefix) < vocab.base_size
    assert ids[len(prefix) : len(prefix) + len(audio)] == audio.tolist()
    audio_ids = torch.tensor(ids[len(prefix) : len(prefix) + len(audio)])
    assert torch.equal(vocab.from_ids(audio_ids), codes)
    assert tok.decode(ids) == text
    assert tok.encode(tok.decode(ids), add_special_tokens=False) == ids


def test_export_refuses_clashing_names(base_tokenizer, tmp_path):
    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.vocab import VocabError

    export_hf_tokenizer(base_tokenizer, tmp_path / "once", 1, 4)
    with pytest.raises(VocabError, match="already has tokens"):
        export_hf_tokenizer(tmp_path / "once", tmp_path / "twice", 1, 4)


def test_parquet_export_reads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    from codeclab.tokens.export import export_parquet
    from codeclab.tokens.vocab import AudioVocab

    writer = ShardWriter(tmp_path / "store", META)
    rng = np.random.default_rng(0)
    for i in range(7):
        writer.add(
            TokenRecord(
                f"u{i}", rng.integers(0, 100, size=(2, 5 + i)), "p", "s", (5 + i) / 50, 16000, text=f"t{i}"
            )
        )
    writer.finish({})
    files = export_parquet(
        tmp_path / "store", tmp_path / "out", rows_per_file=3, pattern="flatten", audio_only=True
    )
    assert len(files) == 3
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / "data" / "*.parquet"))["train"]
    store = TokenStore(tmp_path / "store")
    vocab = AudioVocab.load(tmp_path / "out" / "audio_vocab.json")
    assert sorted(ds["id"]) == store.ids()
    for row in ds:
        assert np.array_equal(np.array(row["codes"]), store[row["id"]].codes)
        assert torch.equal(vocab.from_ids(torch.tensor(row["input_ids"])), store[row["id"]].tensor())
    assert datasets.load_dataset(str(tmp_path / "out"))["train"].num_rows == 7


def _small_store(path, items: int = 4):
    writer = ShardWriter(path, META)
    rng = np.random.default_rng(1)
    for i in range(items):
        writer.add(TokenRecord(f"u{i}", rng.integers(0, 100, size=(2, 6)), "p", "s", 6 / 50, 16000))
    writer.finish({})
    return path


def test_parquet_export_never_deletes_what_it_did_not_write(tmp_path):
    pytest.importorskip("pyarrow")
    from codeclab.tokens.export import ExportError, export_parquet

    store = _small_store(tmp_path / "store")
    users = tmp_path / "project"
    (users / "data").mkdir(parents=True)
    (users / "data" / "speech.wav").write_bytes(b"the user's audio")
    with pytest.raises(ExportError, match="did not write.*speech.wav"):
        export_parquet(store, users, overwrite=True)
    assert (users / "data" / "speech.wav").read_bytes() == b"the user's audio"
    # the store itself (or a directory inside it, or one holding it) is never a target
    for target in (store, store / "sub", tmp_path):
        with pytest.raises(ExportError, match="outside the store"):
            export_parquet(store, target)
    assert TokenStore(store).ids() == [f"u{i}" for i in range(4)]


def test_parquet_export_checks_arguments_before_writing(tmp_path):
    pytest.importorskip("pyarrow")
    from codeclab.tokens.export import ExportError, export_parquet

    store = _small_store(tmp_path / "store")
    out = tmp_path / "out"
    first = export_parquet(store, out, rows_per_file=2)
    before = {p.name: p.read_bytes() for p in first}
    with pytest.raises(ExportError, match="pattern"):
        export_parquet(store, out, pattern="zigzag", overwrite=True)
    with pytest.raises(ExportError, match="n_q must be 1..2, got 12"):
        export_parquet(store, out, n_q=12, overwrite=True)
    with pytest.raises(ExportError, match="--overwrite"):
        export_parquet(store, out)
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir()} == before


def test_parquet_overwrite_replaces_only_its_own_files(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    from codeclab.tokens.export import export_parquet

    store = _small_store(tmp_path / "store")
    out = tmp_path / "out"
    export_parquet(store, out, rows_per_file=1)  # 4 files
    (out / "data" / ".train-00000-of-00004.parquet.abc123.tmp").write_bytes(b"left by a kill")
    (out / "notes.txt").write_text("mine")
    files = export_parquet(store, out, rows_per_file=3, n_q=1, overwrite=True)
    assert (
        sorted(p.name for p in (out / "data").iterdir())
        == [p.name for p in files]
        == [
            "train-00000-of-00002.parquet",
            "train-00001-of-00002.parquet",
        ]
    )
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "codeclab_tokens.json").read_text())["n_q"] == 1
    assert all(len(codes) == 1 for codes in pq.read_table(files[0]).column("codes").to_pylist())


def test_exported_tokenizer_pads_batches_and_fills_in_bos_eos(base_tokenizer, tmp_path):
    """The base has no pad, bos or eos: the audio vocabulary's fill in, so padding=True works."""
    from codeclab.tokens.export import export_hf_tokenizer

    vocab = export_hf_tokenizer(base_tokenizer, tmp_path / "out", num_codebooks=2, codebook_size=10)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (
        vocab.pad_id,
        vocab.bos_id,
        vocab.eos_id,
    )
    batch = tok(["hello world", "the quick brown fox jumps"], padding=True)
    lengths = {len(ids) for ids in batch["input_ids"]}
    assert len(lengths) == 1 and vocab.pad_id in batch["input_ids"][0]


AUDIO_TOKEN = re.compile(r"<\|a(\d+)_(\d+)\|>")


@pytest.mark.parametrize("route", ["vocab", "base"])
def test_exported_ids_decode_with_the_exported_tokenizer(base_tokenizer, tmp_path, route):
    """One vocabulary behind both exports: the parquet export's input_ids (given the tokenizer's
    audio_vocab.json, or built on the same base) are the tokenizer's ids of the store's codes."""
    pytest.importorskip("pyarrow")
    from codeclab.tokens.export import export_hf_tokenizer, export_parquet
    from codeclab.tokens.vocab import AudioVocab

    store = _small_store(tmp_path / "store")
    export_hf_tokenizer(base_tokenizer, tmp_path / "tok", 2, 100, {"codec": {"name": "x"}})
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "tok")
    options = {"vocab": AudioVocab.load(tmp_path / "tok")} if route == "vocab" else {"base": base_tokenizer}
    files = export_parquet(store, tmp_path / "out", pattern="flatten", **options)
    import pyarrow.parquet as pq

    table = pq.read_table(files[0])
    assert str(table.schema.field("codes").type) == "list<element: list<element: int16>>"
    for row in table.to_pylist():
        strings = tok.convert_ids_to_tokens(row["input_ids"])
        pairs = [tuple(map(int, AUDIO_TOKEN.fullmatch(s).groups())) for s in strings]
        codes = np.array([code for _, code in pairs]).reshape(-1, 2).T
        assert [q for q, _ in pairs] == [0, 1] * (len(pairs) // 2)
        assert np.array_equal(codes, TokenStore(store)[row["id"]].codes)
        assert tok.encode(tok.decode(row["input_ids"]), add_special_tokens=False) == row["input_ids"]


def test_a_vocabulary_that_cannot_name_the_codes_is_refused(base_tokenizer, tmp_path):
    pytest.importorskip("pyarrow")
    from codeclab.tokens.export import ExportError, export_hf_tokenizer, export_parquet
    from codeclab.tokens.vocab import AudioVocab, VocabError

    store = _small_store(tmp_path / "store")
    with pytest.raises(ExportError, match="2 of 100"):
        export_parquet(store, tmp_path / "a", pattern="flatten", vocab=AudioVocab(1, 100))
    with pytest.raises(ExportError, match="made for codec 'other'"):
        export_parquet(
            store,
            tmp_path / "b",
            pattern="flatten",
            vocab=AudioVocab(2, 100, metadata={"codec": {"name": "other"}}),
        )
    with pytest.raises(ExportError, match="--pattern"):
        export_parquet(store, tmp_path / "c", vocab=AudioVocab(2, 100))
    with pytest.raises(VocabError, match="built on a base of 0 ids"):  # ids without a base would shift
        export_hf_tokenizer(base_tokenizer, tmp_path / "tok", vocab=AudioVocab(2, 100))
    with pytest.raises(VocabError, match="cannot read the vocabulary"):
        AudioVocab.load(tmp_path / "missing.json")


def test_bos_eos_pad_roles_follow_the_base_tokenizer(tmp_path):
    """A base with its own eos and pad keeps them: the tokenizer and the vocabulary (and so to_ids and
    the LM datasets) agree on every role; the audio <|bos|> fills in the missing bos."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from codeclab.tokens.export import export_hf_tokenizer
    from codeclab.tokens.vocab import AudioVocab

    raw = Tokenizer(models.BPE(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        ["hello world"] * 5, trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]", "</s>", "[PAD]"])
    )
    base = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", eos_token="</s>", pad_token="[PAD]"
    )
    base.save_pretrained(tmp_path / "base")
    vocab = export_hf_tokenizer(tmp_path / "base", tmp_path / "tok", 2, 10)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert vocab.eos_id == base.eos_token_id == tok.eos_token_id and vocab.pad_id == base.pad_token_id
    assert vocab.bos_id == vocab.special("bos") == tok.bos_token_id
    again = AudioVocab.load(tmp_path / "tok")
    assert (again.pad_id, again.bos_id, again.eos_id) == (vocab.pad_id, vocab.bos_id, vocab.eos_id)
    ids = again.to_ids(torch.tensor([[1, 2], [3, 4]]), markers=True, bos=True, eos=True)
    assert int(ids[-1]) == base.eos_token_id and torch.equal(
        again.from_ids(ids), torch.tensor([[1, 2], [3, 4]])
    )


def _readme_llm_lines() -> list[str]:
    """The README's `codeclab export hf-tokenizer` and `codeclab export parquet` lines, as written."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = [line.split("#")[0].strip() for line in readme.splitlines()]
    return [
        line for line in lines if line.startswith(("codeclab export hf-tokenizer", "codeclab export parquet"))
    ]


def test_the_readme_llm_lines_give_ids_the_exported_tokenizer_maps_back_to_the_codes(
    base_tokenizer, tmp_path, monkeypatch
):
    """Run the README's two export lines word for word (LLM_TOKENIZER_DIR -> a local tokenizer, tokens/ ->
    a store of the default codec's shape): the exported tokenizer reads the Parquet input_ids as the
    store's codes, token for token."""
    import shlex

    from typer.testing import CliRunner

    from codeclab.cli.app import app
    from tests.token_stores import write_store

    lines = _readme_llm_lines()
    assert [line.split()[2] for line in lines] == ["hf-tokenizer", "parquet"]
    monkeypatch.chdir(tmp_path)
    meta = store_meta(8, 1024, codec="codeclab-16k-speech")
    rng = np.random.default_rng(0)
    write_store("tokens", meta, (rng.integers(0, 1024, (8, 9)) for _ in range(3)))
    for line in lines:
        args = shlex.split(line.replace("LLM_TOKENIZER_DIR", str(base_tokenizer)))[1:]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (line, result.output)
    import pyarrow.parquet as pq

    tok = transformers.AutoTokenizer.from_pretrained("tok-audio")
    store = TokenStore("tokens")
    rows = pq.read_table(sorted((tmp_path / "tokens-hf" / "data").glob("*.parquet"))[0]).to_pylist()
    for row in rows:
        strings = [s for s in tok.convert_ids_to_tokens(row["input_ids"]) if AUDIO_TOKEN.fullmatch(s)]
        codes = np.array([int(AUDIO_TOKEN.fullmatch(s).group(2)) for s in strings]).reshape(-1, 8).T
        assert np.array_equal(codes, store[row["id"]].codes)


def test_a_tokenizer_paired_with_data_of_another_vocabulary_is_refused(base_tokenizer, tmp_path):
    from codeclab.tokens.export import check_pairing, export_hf_tokenizer, export_parquet
    from codeclab.tokens.vocab import VocabError

    store = _small_store(tmp_path / "store")
    export_hf_tokenizer(base_tokenizer, tmp_path / "tok", 2, 100, {"codec": {"name": "x"}})
    export_parquet(store, tmp_path / "own", pattern="flatten", audio_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "tok")
    with pytest.raises(VocabError, match=r"reads '<\|pad\|>' as id \d+; the data's vocabulary has it at 0"):
        check_pairing(tok, tmp_path / "own")
    export_parquet(store, tmp_path / "paired", pattern="flatten", base=base_tokenizer)
    assert check_pairing(tok, tmp_path / "paired").base_size == len(
        transformers.AutoTokenizer.from_pretrained(base_tokenizer)
    )


def test_framed_export_equals_token_dataset(base_tokenizer, tmp_path):
    """--framing / --text give input_ids exactly as TokenDataset frames the same item."""
    import pyarrow.parquet as pq

    from codeclab.tokens.export import export_hf_tokenizer, export_parquet
    from codeclab.tokens.lm_dataset import TokenDataset
    from codeclab.tokens.vocab import AudioVocab

    writer = ShardWriter(tmp_path / "store", META)
    writer.add(TokenRecord("a", np.arange(10).reshape(2, 5), "p", "s", 0.1, 16000, text="hello world"))
    writer.finish({})
    export_hf_tokenizer(base_tokenizer, tmp_path / "tok", 2, 100, {"codec": {"name": "x"}})
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "tok")
    vocab = AudioVocab.load(tmp_path / "tok")
    for framing, text in [(True, None), (False, "after")]:
        out = tmp_path / f"out-{text}"
        export_parquet(
            tmp_path / "store", out, pattern="flatten", vocab=vocab, framing=framing, text=text, tokenizer=tok
        )
        row = pq.read_table(next((out / "data").glob("*.parquet"))).to_pylist()[0]
        encode = (lambda s: tok(s, add_special_tokens=False)["input_ids"]) if text else None
        ds = TokenDataset(
            TokenStore(tmp_path / "store"),
            vocab,
            "flatten",
            text_tokenizer=encode,
            text_position=text or "before",
        )
        assert row["input_ids"] == ds[0]["input_ids"].tolist()
        assert row["input_ids"][0] == vocab.bos_id and row["input_ids"][-1] == vocab.eos_id
