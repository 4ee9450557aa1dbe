"""Weights folders and configs a user did not write: every bad field is refused, naming the file and the
field, before any module is built or any weights byte is read (issue: nothing trusted blindly)."""

from __future__ import annotations

import json
import time

import pytest

from codeclab.catalog.loading import load_pretrained, save_pretrained
from codeclab.codecs.neural import CodecConfig


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from codeclab.catalog.loading import load_codec

    directory = tmp_path_factory.mktemp("weights")
    save_pretrained(load_codec("codeclab-16k-speech", random_init=True), directory)
    return directory


def _tampered(saved, tmp_path, change) -> object:
    meta = json.loads((saved / "config.json").read_text())
    change(meta)
    target = tmp_path / "w"
    target.mkdir()
    (target / "config.json").write_text(json.dumps(meta))
    (target / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    return target


def _set(path: str, value):
    def change(meta):
        node = meta
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("config.quantizer.params.codebook_size", 10**9, r"codebook_size must lie in \[2, 1.04858e\+06\]"),
        ("config.quantizer.params.num_quantizers", 10**7, r"num_quantizers must lie in \[1, 256\]"),
        ("config.quantizer.params.codebook_size", "1024", r"codebook_size must be int, got '1024'"),
        ("config.quantizer.params.decay", True, r"decay must be float, got True"),
        ("config.encoder.ratios", [2, "4"], r"ratios must be list\[int\]"),
        ("config.encoder.n_filters", 4096, r"channels \(the limit is 4,096\)"),
        ("config.decoder.width", 10**6, r"width must lie in"),
        ("config.sample_rate", 16000.5, r"sample_rate must be int"),
        ("config.decoder_kind", "wavenet", r"unknown decoder_kind 'wavenet'"),
        ("config.quantizer", [], r"'quantizer' must be a JSON object"),
        ("config.quantizer.params.bogus", 1, r"unknown split quantizer settings: bogus"),
    ],
)
def test_bad_config_fields_are_refused_quickly(saved, tmp_path, field, value, message):
    target = _tampered(saved, tmp_path, _set(field, value))
    started = time.perf_counter()
    with pytest.raises(ValueError, match=message) as caught:
        load_pretrained(target)
    assert str(target / "config.json") in str(caught.value)
    assert time.perf_counter() - started < 5  # refused before allocating anything large


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "", 7, "sub/model.safetensors"])
def test_weights_file_must_stay_inside_its_folder(saved, tmp_path, name):
    target = _tampered(saved, tmp_path, _set("weights_file", name))
    with pytest.raises(ValueError, match="weights_file must be a file name inside"):
        load_pretrained(target)


def test_config_round_trip_still_loads(saved):
    codec = load_pretrained(saved)
    assert CodecConfig.from_dict(codec.config.to_dict()) == codec.config


def test_missing_section_names_it():
    with pytest.raises(ValueError, match="'encoder' must be a JSON object"):
        CodecConfig.from_dict({"sample_rate": 16000, "decoder": {}, "quantizer": {}})
    with pytest.raises(ValueError, match="expected a JSON object"):
        CodecConfig.from_dict([1, 2])
