"""Fixtures shared by the token tests."""

import pytest


@pytest.fixture
def base_tokenizer(tmp_path):
    """A small byte-level BPE text tokenizer trained here (nothing is downloaded); its directory."""
    transformers = pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["[UNK]"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog; hello world!"] * 40, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.save_pretrained(tmp_path / "base")
    return tmp_path / "base"
