"""R8 (reliability report 2026-12-04): a saved peer directory whose transformers config or codec name was
edited is refused before anything is built."""

from __future__ import annotations

import json

import pytest

import codeclab

pytest.importorskip("transformers", reason="peer codecs need transformers")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    codec = codeclab.load_codec("encodec-24khz", random_init=True)
    return codec.save_pretrained(tmp_path_factory.mktemp("peer") / "encodec")


def copy(saved, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


def test_a_saved_peer_loads_back(saved):
    assert codeclab.load_codec(str(saved)).sample_rate == 24000


@pytest.mark.parametrize(
    "edit", [("sampling_rate", 16000), ("target_bandwidths", [1.5]), ("normalize", True)]
)
def test_an_edited_transformers_config_is_refused(saved, tmp_path, edit):
    target = copy(saved, tmp_path)
    path = target / "transformers" / "config.json"
    config = json.loads(path.read_text())
    config[edit[0]] = edit[1]
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="transformers/config.json: differs from what"):
        codeclab.load_codec(str(target))


def test_another_peer_name_is_refused(saved, tmp_path):
    target = copy(saved, tmp_path)
    path = target / "config.json"
    meta = json.loads(path.read_text())
    meta["name"] = "dac-16khz"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not belong to these files"):
        codeclab.load_codec(str(target))
