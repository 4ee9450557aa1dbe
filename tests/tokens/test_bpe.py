"""Acoustic BPE: exact round trips, the exported tokenizer agrees id for id, unsupported patterns refused."""

import numpy as np
import pytest

from codeclab.tokens.store import TokenRecord
from tests.token_stores import store_meta, write_store

pytest.importorskip("tokenizers", reason="the llm extra (tokenizers) is not installed")
transformers = pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")

META = store_meta(3, 16)


def store_with(path, make, items=20):
    return write_store(path, META, (make(i) for i in range(items)))


def repetitive(i):
    """Codes with structure BPE can merge: a few short motifs repeated."""
    rng = np.random.default_rng(i)
    motifs = [rng.integers(0, 16, size=(3, 4)) for _ in range(3)]
    return np.concatenate([motifs[j] for j in rng.integers(0, 3, size=12)], axis=1)


@pytest.mark.parametrize("pattern", ["flatten", "coarse_first"])
def test_bpe_round_trip_is_exact_and_the_tokenizer_agrees_id_for_id(tmp_path, pattern):
    from codeclab.tokens.bpe import AudioBPE, codes_to_text, train_bpe

    store = store_with(tmp_path / "store", repetitive)
    bpe = train_bpe(store, 3 * 16 + 5 + 40, tmp_path / "bpe", pattern=pattern)
    loaded = AudioBPE.load(tmp_path / "bpe")
    fast = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "bpe"))
    rng = np.random.default_rng(9)
    for codes in [repetitive(100), repetitive(101), rng.integers(0, 16, size=(3, 17))]:
        ids = bpe.encode(codes)
        assert np.array_equal(bpe.decode(ids), codes) and np.array_equal(loaded.decode(ids), codes)
        assert fast(codes_to_text(codes, 16, pattern), add_special_tokens=False)["input_ids"] == ids
    structured = bpe.encode(repetitive(100))
    assert len(structured) < repetitive(100).size  # merges shorten structured codes


def test_bpe_refuses_stream_patterns_small_vocabularies_and_foreign_ids(tmp_path):
    from codeclab.tokens.bpe import BPEError, train_bpe

    store = store_with(tmp_path / "store", repetitive)
    with pytest.raises(BPEError, match="one stream per codebook"):
        train_bpe(store, 100, tmp_path / "a", pattern="delay")
    with pytest.raises(BPEError, match="at least 53"):
        train_bpe(store, 50, tmp_path / "b")
    bpe = train_bpe(store, 60, tmp_path / "c", n_q=2)  # 5 specials + 32 codes + merges
    with pytest.raises(BPEError, match="shape"):
        bpe.encode(np.zeros((3, 4), dtype=np.int64))
    from codeclab.tokens.bpe import BASE

    second_codebook = bpe.tokenizer.convert_tokens_to_ids(chr(BASE + 16))  # code 0 of codebook 1
    with pytest.raises(BPEError, match="do not divide"):
        bpe.decode([second_codebook])
    with pytest.raises(BPEError, match="not flatten codes"):
        bpe.decode([second_codebook, second_codebook])  # codebook 1 where codebook 0 belongs


def test_export_bpe_command(base_tokenizer, tmp_path):
    from typer.testing import CliRunner

    from codeclab.cli.app import app

    store = store_with(tmp_path / "store", repetitive)

    def export(out, *extra):
        args = ["export", "bpe", str(store), "--vocab-size", "80", "--out", str(tmp_path / out), *extra]
        return CliRunner().invoke(app, args)

    result = export("bpe")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "bpe" / "audio_bpe.json").is_file() and (tmp_path / "bpe" / "tokenizer.json").is_file()
    merged = export("m", "--base", str(base_tokenizer))
    assert merged.exit_code == 0 and "text ids 0-" in merged.output, merged.output
    assert (tmp_path / "m" / "audio" / "tokenizer.json").is_file()
    bad = export("x", "--pattern", "delay")
    assert bad.exit_code == 2 and "one stream per codebook" in bad.output


def test_lm_datasets_take_the_bpe_as_their_vocabulary(tmp_path):
    """TokenDataset and PackedTokenDataset give BPE ids (bos, audio_start ... audio_end, eos) that decode
    back to the store's codes."""
    import torch

    from codeclab.tokens.bpe import train_bpe
    from codeclab.tokens.lm_dataset import PackedTokenDataset, TokenDataset
    from codeclab.tokens.store import TokenStore

    store = store_with(tmp_path / "store", repetitive)
    bpe = train_bpe(store, 90, tmp_path / "bpe")
    dataset = TokenDataset(str(store), vocab=bpe)
    item = dataset[0]
    ids = item["input_ids"]
    assert (
        int(ids[0]) == bpe.bos_id and int(ids[1]) == bpe.special("audio_start") and int(ids[-1]) == bpe.eos_id
    )
    assert torch.equal(bpe.from_ids(ids), TokenStore(store)[item["id"]].tensor())
    packed = next(iter(PackedTokenDataset(dataset, 256)))
    assert packed["input_ids"].shape == (256,) and int(packed["input_ids"].max()) < bpe.size
    padding = packed["input_ids"][packed["attention_mask"] == 0]
    assert bool((padding == bpe.pad_id).all())


@pytest.mark.parametrize("pattern", ["flatten", "coarse_first"])
def test_bpe_merged_with_a_text_tokenizer_keeps_text_ids_and_agrees_id_for_id(
    base_tokenizer, tmp_path, pattern
):
    """--base: the text tokenizer's ids are unchanged, audio ids follow it, transformers' tokenizer maps the
    audio string to codeclab's ids exactly, and codes -> ids -> codes is exact."""
    from codeclab.tokens.bpe import AudioBPE, BPEError, train_bpe

    store = store_with(tmp_path / "store", repetitive)
    plain = train_bpe(store, 100, tmp_path / "plain", pattern=pattern)
    merged = train_bpe(store, 100, tmp_path / "bpe", pattern=pattern, base=base_tokenizer)
    base = transformers.AutoTokenizer.from_pretrained(str(base_tokenizer))
    tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "bpe"))
    loaded = AudioBPE.load(tmp_path / "bpe")
    assert (
        merged.base_size == loaded.base_size == len(base) and len(tok) == merged.vocab_size == len(base) + 100
    )
    text = "hello world, the lazy dog"
    assert tok(text, add_special_tokens=False).input_ids == base(text, add_special_tokens=False).input_ids
    rng = np.random.default_rng(3)
    for codes in [repetitive(100), rng.integers(0, 16, size=(3, 9))]:
        ids = loaded.encode(codes)
        assert ids == [i + len(base) for i in plain.encode(codes)]  # the same merges, shifted
        framed = loaded.to_ids(codes, pattern=pattern, markers=True).tolist()
        mixed = tok(text + loaded.audio_text(framed), add_special_tokens=False).input_ids
        prefix = base(text, add_special_tokens=False).input_ids
        assert mixed == prefix + framed
        assert np.array_equal(loaded.decode(ids), codes) and np.array_equal(merged.decode(framed), codes)
    # the base has no pad / bos / eos: the audio specials play them, in the tokenizer too
    assert tok.pad_token_id == loaded.pad_id == loaded.special("pad") and tok.eos_token_id == loaded.eos_id
    with pytest.raises(BPEError, match="text tokens"):
        loaded.decode(prefix)


def test_bpe_merge_refuses_a_missing_base_and_clashing_names(tmp_path):
    from tokenizers import Tokenizer, models

    from codeclab.tokens.bpe import BPEError, train_bpe

    store = store_with(tmp_path / "store", repetitive)
    with pytest.raises(BPEError, match="nowhere"):
        train_bpe(store, 100, tmp_path / "a", base=tmp_path / "nowhere")
    clashing = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0, "<|abpe_60|>": 1}, unk_token="[UNK]")),
        unk_token="[UNK]",
    )
    clashing.save_pretrained(tmp_path / "clash")
    with pytest.raises(BPEError, match="already has tokens named like audio tokens"):
        train_bpe(store, 100, tmp_path / "b", base=tmp_path / "clash")


def test_a_merged_bpe_feeds_text_and_audio_to_the_lm_datasets(base_tokenizer, tmp_path):
    """TokenDataset with a merged BPE and the base tokenizer: text ids, then the framed audio ids, in one
    id space that the merged tokenizer decodes; the audio part decodes back to the store's codes."""
    import torch

    from codeclab.tokens.bpe import train_bpe
    from codeclab.tokens.lm_dataset import TokenDataset
    from codeclab.tokens.store import TokenStore

    records = (
        TokenRecord(f"u{i:02d}", repetitive(i), "p", "s", 1.0, 16000, text="hello world") for i in range(12)
    )
    write_store(tmp_path / "store", META, records)
    bpe = train_bpe(tmp_path / "store", 100, tmp_path / "bpe", base=base_tokenizer)
    base = transformers.AutoTokenizer.from_pretrained(str(base_tokenizer))
    text_ids = base("hello world", add_special_tokens=False).input_ids
    dataset = TokenDataset(
        str(tmp_path / "store"),
        vocab=bpe,
        text_tokenizer=lambda text: base(text, add_special_tokens=False).input_ids,
    )
    ids = dataset[0]["input_ids"].tolist()
    assert ids[0] == bpe.bos_id and ids[1 : 1 + len(text_ids)] == text_ids
    audio = ids[1 + len(text_ids) :]
    assert audio[0] == bpe.special("audio_start") and min(audio) >= bpe.base_size
    assert torch.equal(
        torch.from_numpy(bpe.decode(audio)).long(), TokenStore(tmp_path / "store")[dataset.ids[0]].tensor()
    )
    assert bpe.merged.decode(ids[1 : 1 + len(text_ids)]) == "hello world"


@pytest.fixture(scope="module")
def real_codes():
    """The bundled codec's codes (n_q 4) of the shipped clips of the other speakers, and of Carlo's clip
    (a speaker no training step of the codec heard)."""
    from pathlib import Path

    import torch

    import codeclab
    from codeclab.audio.io import load_audio

    codec = codeclab.load_codec("codeclab-16k-speech")

    def codes_of(path):
        return codec.encode(torch.as_tensor(load_audio(path, 16000, 1))[None], n_q=4).codes[0].numpy()

    root = Path(__file__).resolve().parents[2]
    others = [p for p in sorted((root / "tests/assets/speech").glob("*.flac")) if "Carlo" not in p.name]
    carlo = root / "codeclab/assets/speech/it_IT_m_Carlo__vm-intro.flac"
    return [codes_of(p) for p in others], codes_of(carlo)


@pytest.mark.parametrize("pattern", ["flatten", "coarse_first"])
def test_bpe_round_trip_is_exact_on_real_codes(tmp_path, real_codes, pattern):
    """BPE trained on the other speakers' codes, applied to Carlo's: codes -> ids -> codes exactly, and
    the transformers tokenizer gives the same ids."""
    from codeclab.tokens.bpe import codes_to_text, train_bpe

    others, carlo = real_codes
    write_store(tmp_path / "store", store_meta(4, 1024), others)
    bpe = train_bpe(tmp_path / "store", 4 * 1024 + 5 + 300, tmp_path / "bpe", pattern=pattern)
    fast = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "bpe"))
    ids = bpe.encode(carlo)
    assert np.array_equal(bpe.decode(ids), carlo)
    assert fast(codes_to_text(carlo, 1024, pattern), add_special_tokens=False)["input_ids"] == ids
    assert len(ids) < carlo.size  # some merges apply to a new speaker's codes


def test_plain_bpe_audio_text_round_trips_through_its_own_tokenizer(tmp_path):
    """Without --base, `tok(bpe.audio_text(ids))` gives back the same ids (it gave 2 ids for 170); ids
    the tokenizer would segment otherwise are refused, never mapped to other ids."""
    from codeclab.tokens.bpe import AudioBPE, BPEError, train_bpe

    store = store_with(tmp_path / "store", repetitive)
    train_bpe(store, 3 * 16 + 5 + 40, tmp_path / "bpe")
    bpe = AudioBPE.load(tmp_path / "bpe")
    tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "bpe"))
    ids = bpe.to_ids(repetitive(7), markers=True)
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    text = bpe.audio_text(ids)
    assert tok(text, add_special_tokens=False)["input_ids"] == ids and len(ids) > 10
    from codeclab.tokens.bpe import codes_to_text

    codes = repetitive(100)
    single = [bpe.tokenizer.convert_tokens_to_ids(ch) for ch in codes_to_text(codes, 16)]  # no merges
    assert single != bpe.encode(codes) and np.array_equal(bpe.decode(single), codes)
    with pytest.raises(BPEError, match="not the tokenizer's own segmentation"):
        bpe.audio_text(single)
