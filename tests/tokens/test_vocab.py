import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codeclab.tokens.vocab import PATTERNS, AudioVocab, VocabError


@st.composite
def vocab_and_codes(draw):
    q = draw(st.integers(1, 9))
    k = draw(st.integers(1, 3000))
    base = draw(st.integers(0, 70000))
    n_q = draw(st.integers(1, q))
    frames = draw(st.integers(0, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    codes = torch.randint(0, k, (n_q, frames), generator=torch.Generator().manual_seed(seed))
    return AudioVocab(q, k, base), codes


@settings(max_examples=200, deadline=None)
@given(vocab_and_codes(), st.sampled_from(PATTERNS), st.booleans(), st.booleans(), st.booleans())
def test_tokens_codes_tokens_is_exact(vc, pattern, markers, bos, eos):
    vocab, codes = vc
    flat = pattern in ("flatten", "coarse_first")
    kwargs = {"markers": markers, "bos": bos, "eos": eos} if flat else {}
    tokens = vocab.to_ids(codes, pattern, **kwargs)
    back = vocab.from_ids(tokens, pattern, n_q=codes.shape[0])
    assert torch.equal(back, codes)
    assert torch.equal(vocab.to_ids(back, pattern, **kwargs), tokens)
    audio = tokens[vocab.is_audio(tokens)]
    assert bool((audio >= vocab.base_size).all())  # never inside the base vocabulary
    assert bool((tokens < vocab.size).all())


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 5000), st.integers(0, 100000))
def test_ids_never_collide(q, k, base):
    vocab = AudioVocab(q, k, base)
    specials = [vocab.special(n) for n in vocab.special_names]
    ranges = [range(base, base + len(specials))] + [
        range(vocab.offset(i), vocab.offset(i) + k) for i in range(q)
    ]
    ids = [i for r in ranges for i in r]
    assert len(ids) == len(set(ids)) == vocab.size - base
    assert min(ids) == base and max(ids) == vocab.size - 1
    assert sorted(specials) == list(range(base, base + len(specials)))


def test_patterns_layout():
    vocab = AudioVocab(2, 10, base_size=100)
    codes = torch.tensor([[1, 2, 3], [4, 5, 6]])
    off0, off1 = vocab.offset(0), vocab.offset(1)
    assert vocab.to_ids(codes, "flatten").tolist() == [
        off0 + 1,
        off1 + 4,
        off0 + 2,
        off1 + 5,
        off0 + 3,
        off1 + 6,
    ]
    assert vocab.to_ids(codes, "coarse_first").tolist() == [
        off0 + 1,
        off0 + 2,
        off0 + 3,
        off1 + 4,
        off1 + 5,
        off1 + 6,
    ]
    delay = vocab.to_ids(codes, "delay")
    assert delay.shape == (2, 4)
    assert delay[0, 3] == vocab.special("audio_pad_0") and delay[1, 0] == vocab.special("audio_pad_1")
    assert delay[1, 1:].tolist() == [off1 + 4, off1 + 5, off1 + 6]


def test_bad_sequences_are_rejected():
    vocab = AudioVocab(2, 10)
    tokens = vocab.to_ids(torch.tensor([[1, 2], [3, 4]]))
    with pytest.raises(VocabError, match="order"):
        vocab.from_ids(tokens.flip(0))
    with pytest.raises(VocabError, match="divide"):
        vocab.from_ids(tokens[:-1])
    with pytest.raises(VocabError, match="neither audio"):
        vocab.from_ids(torch.tensor([vocab.size + 5]))
    with pytest.raises(VocabError, match="codebooks"):
        vocab.to_ids(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(VocabError, match="unknown pattern"):
        vocab.to_ids(torch.zeros(2, 2, dtype=torch.long), "spiral")


def test_json_round_trip(tmp_path):
    vocab = AudioVocab(4, 1024, base_size=32000, metadata={"codec": {"name": "x"}})
    vocab.save(tmp_path / "v.json")
    again = AudioVocab.load(tmp_path / "v.json")
    assert again.to_dict() == vocab.to_dict()
    codes = torch.randint(0, 1024, (4, 7))
    assert torch.equal(again.to_ids(codes, "delay"), vocab.to_ids(codes, "delay"))


def test_old_method_names_still_work_with_a_warning():
    vocab = AudioVocab(2, 8)
    codes = torch.tensor([[1, 2], [3, 4]])
    with pytest.warns(DeprecationWarning, match="to_ids"):
        ids = vocab.encode(codes)
    with pytest.warns(DeprecationWarning, match="from_ids"):
        assert torch.equal(vocab.decode(ids), codes)
    assert torch.equal(ids, vocab.to_ids(codes))
