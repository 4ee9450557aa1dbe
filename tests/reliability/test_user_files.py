"""R5, R6, R17 (reliability report 2026-12-04): inputs are never targets, outputs replace an existing
file whole or not at all, and a bad output name is a usage error."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from codeclab.cli.app import main


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(args)
    return caught.value.code


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "in.wav"
    t = np.arange(16000) / 16000
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, subtype="PCM_16")
    return path


CODEC = ["--codec", "codeclab-tiny", "--random-init"]


@pytest.mark.parametrize("stream", [True, False])
def test_encode_onto_its_own_input_is_refused_and_the_input_kept(wav, stream, capsys):
    before = wav.read_bytes()
    assert run(["encode", str(wav), str(wav), *CODEC] + (["--stream"] if stream else [])) == 2
    assert "the target is the input file" in capsys.readouterr().err
    assert wav.read_bytes() == before


def test_a_refused_stream_leaves_an_existing_target_alone(tmp_path, wav):
    keep = tmp_path / "keep.clab"
    keep.write_bytes(b"the user's earlier file")
    assert run(["encode", "--stream", str(tmp_path / "missing.wav"), str(keep), *CODEC]) == 2
    assert keep.read_bytes() == b"the user's earlier file"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_killed_decode_leaves_the_old_file_whole(tmp_path, wav, monkeypatch):
    from codeclab.audio import io

    target = tmp_path / "old.wav"
    sf.write(target, np.zeros(8000, dtype=np.float32), 16000)
    before = target.read_bytes()

    def dying_blocks():
        yield np.zeros((1, 4000), dtype=np.float32)
        raise KeyboardInterrupt  # killed between two blocks

    with pytest.raises(KeyboardInterrupt):
        io.write_audio_blocks(target, dying_blocks(), 16000, 1)
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    io.write_audio(target, np.ones((1, 100), dtype=np.float32) * 0.5, 16000)
    assert sf.info(target).frames == 100


@pytest.mark.parametrize("name", ["out.txt", "noextension"])
def test_decode_to_a_name_without_an_audio_format_is_a_usage_error(tmp_path, wav, name, capsys):
    clab = tmp_path / "x.clab"
    assert run(["encode", str(wav), str(clab), *CODEC]) == 0
    capsys.readouterr()
    assert run(["decode", str(clab), str(tmp_path / name)]) == 2
    assert "cannot tell the audio format" in capsys.readouterr().err
    assert run(["decode", str(clab), str(tmp_path)]) == 2


@pytest.mark.parametrize(
    "option,value",
    [("--worker-timeout", "-1"), ("--batch-seconds", "-5"), ("--flush-items", "0"), ("--workers", "-2")],
)
def test_negative_tokenize_options_are_refused_by_name(tmp_path, wav, option, value, capsys):
    assert run(["tokenize", str(wav), "--out", str(tmp_path / "s"), *CODEC, option, value]) == 2
    assert option in capsys.readouterr().err


def test_a_path_with_brackets_appears_intact_in_an_error(tmp_path, capsys):
    missing = tmp_path / "[take 2]" / "codeclab[bench].wav"
    assert run(["encode", str(missing), str(tmp_path / "x.clab"), *CODEC]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "[take 2]" in err and "codeclab[bench].wav" in err
