"""Files written by codeclab 0.1.0 (the first wave, commit 4fb07c3) still load: a token store, a .clab
file and a weights directory (tests/fixtures/v0.1.0, made by make_fixtures.py there with that version).

The codeclab-tiny preset's random init changed since (the quantizer centres its latents and calibrates
differently), so codes made by 0.1.0's random-init codec decode with its saved weights, not with today's
random init, and today's code says so instead of decoding them with the wrong codec."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import codeclab
from codeclab.audio.io import load_audio
from codeclab.catalog.ref import CodecRef
from codeclab.pipelines.clab_files import decode_file
from codeclab.tokens.clab import read_clab
from codeclab.tokens.store import TokenStore, merge

OLD = Path(__file__).parent / "fixtures" / "v0.1.0"


def test_old_store_reads_and_merges(tmp_path):
    store = TokenStore(OLD / "store")
    assert store.ids() == ["utt0.wav", "utt1.wav", "utt2.wav"]
    assert store.n_q == 4 and store.codebook_size == 64 and store.errors() == []
    codes = store["utt1.wav"].codes
    assert codes.shape == (4, 40) and np.array_equal(codes, read_clab(OLD / "utt1.clab").codes)
    copy = tmp_path / "store"  # today's code merges an old store (and then checks its parts)
    shutil.copytree(OLD / "store", copy)
    merge(copy)
    assert [TokenStore(copy)[i].codes.tolist() for i in store.ids()] == [
        store[i].codes.tolist() for i in store.ids()
    ]


def test_old_weights_directory_loads_and_codes_as_it_did():
    old = codeclab.load_codec(OLD / "weights")  # its config has settings retired since 0.1.0
    wav = torch.as_tensor(load_audio(OLD / "audio" / "utt1.wav", 16000, 1))
    assert np.array_equal(old.encode(wav[None]).codes[0].numpy(), read_clab(OLD / "utt1.clab").codes)


def test_old_clab_decodes_as_it_did_with_its_weights(tmp_path):
    with pytest.raises(ValueError, match="but the codes were made with"):  # today's random init differs
        decode_file(OLD / "utt1.clab", tmp_path / "wrong.wav")
    decode_file(OLD / "utt1.clab", tmp_path / "out.wav", CodecRef(str(OLD / "weights")))
    expected = np.load(OLD / "utt1.decoded.npy", allow_pickle=False)
    got = load_audio(tmp_path / "out.wav", 16000, 1)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3  # written as 16-bit PCM
