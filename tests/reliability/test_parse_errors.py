"""R14 (reliability report 2026-12-04): damaged store and weights files give a ValueError (StoreError)
that names the file, never a UnicodeDecodeError, RecursionError, torch RuntimeError or AttributeError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codeclab.catalog.loading import load_pretrained
from codeclab.codecs.pretrained import read_config
from codeclab.tokens.store import StoreError, TokenStore, merge
from tests.token_stores import store_meta, write_store


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    return write_store(
        tmp_path / "store", store_meta(2, 16), [rng.integers(0, 16, (2, 20)) for _ in range(3)]
    )


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b"[" * 100000])
def test_damaged_tokens_json_names_the_file(store, tmp_path, content):
    (tmp_path / "store" / "tokens.json").write_bytes(content)
    with pytest.raises(StoreError, match="tokens.json"):
        TokenStore(store)


@pytest.mark.parametrize("line", ["5", '"xid"', "[1, 2]", "null", '{"path": "p"}', '{"iD": "a"}'])
def test_an_errors_log_line_without_an_id_names_the_file_and_line(store, tmp_path, line):
    errors = tmp_path / "store" / "errors"
    errors.mkdir(exist_ok=True)
    (errors / "shard-00000-of-00001.jsonl").write_text(
        line + "\n" + json.dumps({"id": "z", "reason": "r"}) + "\n"
    )
    with pytest.raises(StoreError, match="line 1"):
        merge(store)


@pytest.fixture
def codec_dir(tmp_path):
    import codeclab

    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    return codec.save_pretrained(tmp_path / "codec")


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b"[" * 100000])
def test_damaged_codec_config_names_the_file(codec_dir, content):
    (codec_dir / "config.json").write_bytes(content)
    with pytest.raises(ValueError, match="config.json"):
        read_config(codec_dir)


def test_a_config_that_does_not_fit_the_weights_is_a_value_error(codec_dir):
    path = codec_dir / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["quantizer"]["params"]["codebook_size"] = 32
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not fit the config"):
        load_pretrained(codec_dir)
    meta["name"] = 7
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="'name' must be a string"):
        load_pretrained(codec_dir)
