"""R16, R18, R19 (reliability report 2026-12-04): API inputs become ValueErrors, ids that detokenize could
not write are refused at the start, and stale temporary files do not survive a resume."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

import codeclab
from codeclab.corpora.manifest import ManifestError, check_item_id
from codeclab.pipelines.tokenize import tokenize_corpus


@pytest.fixture(scope="module")
def tiny():
    return codeclab.load_codec("codeclab-tiny", random_init=True)


@pytest.mark.parametrize("lengths", ["abc", [None, 5]])
def test_bad_lengths_are_value_errors(tiny, lengths):
    with pytest.raises(ValueError, match="lengths"):
        tiny.encode(torch.zeros(2, 1, 800), lengths=lengths)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8])
def test_narrow_code_types_are_value_errors(tiny, dtype):
    with pytest.raises(ValueError, match="int16, int32 or int64"):
        tiny.decode(torch.zeros(1, 2, 10, dtype=dtype))


def test_absurd_sample_rates_are_refused(tiny):
    with pytest.raises(ValueError, match="1000 to 768000"):
        tiny.encode(torch.zeros(1, 1, 100), sample_rate=1)


def test_an_id_part_longer_than_a_file_name_is_refused():
    with pytest.raises(ManifestError, match="at most 240 bytes"):
        check_item_id("L/" + "a" * 300 + ".wav", "m.jsonl line 1")
    assert check_item_id("L/" + "a" * 200 + ".wav", "m.jsonl line 1")


def test_stale_temporary_files_are_swept_by_resume(good_corpus, tmp_path):
    from tests.pipelines.test_tokenize import options

    store = tmp_path / "store"
    tokenize_corpus(options([good_corpus], store))
    leftovers = [
        store / ".index.pq.abc123.tmp",
        store / ".errors.jsonl.abc123.tmp",
        store / ".stats.json.abc123.tmp",
        store / ".README.md.abc123.tmp",
        store / "done" / ".shard-00000-of-00001.json.abc123.tmp",
    ]
    old = time.time() - 7200
    for path in leftovers:
        path.write_text("half")
        os.utime(path, (old, old))
    (store / "index.pq").unlink()  # a merge that was killed: --resume merges again
    tokenize_corpus(options([good_corpus], store, resume=True))
    assert [p.name for p in leftovers if p.exists()] == []
    assert json.loads((store / "stats.json").read_text())["items"] > 0


def test_a_zero_dim_integer_tensor_is_an_n_q(tiny):
    wav = torch.zeros(1, 1, 800)
    assert tiny.encode(wav, n_q=torch.tensor(2)).codes.shape[1] == 2
    for bad in (torch.tensor(2.0), torch.tensor([2]), torch.tensor(True)):
        with pytest.raises(ValueError, match="n_q"):
            tiny.encode(wav, n_q=bad)
