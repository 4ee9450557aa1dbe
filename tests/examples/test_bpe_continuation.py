"""The docs/llm.md example end to end: tokenize a folder, train BPE, train a transformers model on the
BPE ids, sample a continuation of a held-out item and decode it to WAV."""

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.corpus_files import write_good

pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bpe_continuation.py"


def run(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([*args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out


@pytest.mark.slow  # about 50 s on 2 cores: three processes that import torch and transformers
def test_tokenize_bpe_train_and_continue_a_held_out_item(tmp_path):
    write_good(tmp_path / "corpus")
    cli = [str(Path(sys.executable).with_name("codeclab"))]  # the console script of this environment
    codec = ["--codec", "codeclab-tiny", "--random-init"]
    run(
        *cli,
        "tokenize",
        str(tmp_path / "corpus"),
        "--out",
        str(tmp_path / "tokens"),
        *codec,
        "--workers",
        "0",
    )
    run(
        *cli,
        "export",
        "bpe",
        str(tmp_path / "tokens"),
        "--vocab-size",
        "200",
        "--n-q",
        "2",
        "--out",
        str(tmp_path / "bpe"),
    )
    args = ["--steps", "20", "--context", "64", "--batch", "4", "--prompt-seconds", "0.2", "--seconds", "0.4"]
    out = run(
        sys.executable,
        str(EXAMPLE),
        str(tmp_path / "tokens"),
        str(tmp_path / "bpe"),
        "--out",
        str(tmp_path / "c"),
        *args,
    )
    assert "s sampled" in out.stdout
    losses = [float(x) for x in (tmp_path / "c" / "losses.txt").read_text().split()]
    assert len(losses) == 20 and sum(losses[-5:]) < sum(losses[:5])  # it learns something
    prompt, continuation = (
        sf.info(tmp_path / "c" / "prompt.wav"),
        sf.info(tmp_path / "c" / "continuation.wav"),
    )
    assert prompt.samplerate == continuation.samplerate == 16000
    assert prompt.frames == 10 * 320  # 0.2 s at 50 Hz
    assert continuation.frames > prompt.frames  # something was sampled after the prompt, whole frames
    assert continuation.frames % 320 == 0
