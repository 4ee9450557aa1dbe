"""R9 (reliability report 2026-12-04): a codec whose config.json changed in ways that keep the tensor
shapes is refused when it detokenizes a store or decodes a .clab file made before the change."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import codeclab
from codeclab.cli.app import main


@pytest.fixture
def codec_dir(tmp_path):
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    return codec.save_pretrained(tmp_path / "codec")


def edit_causal(codec_dir):
    path = codec_dir / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["encoder"]["causal"] = False
    meta["config"]["decoder"]["causal"] = False
    path.write_text(json.dumps(meta))


def run(args):
    with pytest.raises(SystemExit) as caught:
        main(args)
    return caught.value.code


def test_detokenize_and_decode_refuse_an_edited_config(codec_dir, tmp_path, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(
        audio / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000
    )
    store = tmp_path / "store"
    assert run(["tokenize", str(audio), "--out", str(store), "--codec", str(codec_dir)]) == 0
    clab = tmp_path / "a.clab"
    assert run(["encode", str(audio / "a.wav"), str(clab), "--codec", str(codec_dir)]) == 0
    edit_causal(codec_dir)
    capsys.readouterr()
    assert run(["detokenize", str(store), "--out", str(tmp_path / "wavs")]) == 2
    assert "config.json changed" in capsys.readouterr().err
    assert run(["decode", str(clab), str(tmp_path / "a.wav")]) == 2
    assert "config.json changed" in capsys.readouterr().err
