"""R3 (reliability report 2026-12-04): a later run whose ids are already in the store for other files
is refused, never a silent no-op."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from codeclab.pipelines.tokenize import tokenize_corpus
from codeclab.tokens.store import StoreError, TokenStore


def corpus(root, seed):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for i in range(3):
        sf.write(root / f"utt{i}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return root


def test_same_ids_from_other_files_are_refused(tmp_path):
    from tests.pipelines.test_tokenize import options

    spk1, spk2 = corpus(tmp_path / "spk1", 1), corpus(tmp_path / "spk2", 2)
    store = tmp_path / "store"
    tokenize_corpus(options([spk2], store))
    for resume in (False, True):
        with pytest.raises(StoreError, match=r"3 ids of this run already hold other audio.*utt0.wav"):
            tokenize_corpus(options([spk1], store, resume=resume))
    assert str(TokenStore(store)["utt0.wav"].path).endswith("spk2/utt0.wav")


def test_the_same_files_rerun_or_moved_are_still_finished(tmp_path):
    from tests.pipelines.test_tokenize import options

    spk = corpus(tmp_path / "spk", 3)
    store = tmp_path / "store"
    tokenize_corpus(options([spk], store))
    assert tokenize_corpus(options([spk], store)).skipped == 3  # a rerun: nothing to do
    moved = tmp_path / "moved"
    shutil.copytree(spk, moved)
    assert tokenize_corpus(options([moved], store)).skipped == 3  # same bytes elsewhere: same sources
