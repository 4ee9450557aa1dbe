import subprocess
import sys
from pathlib import Path

import soundfile as sf

from codeclab.catalog.ref import CodecRef
from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
from tests.corpus_files import write_good

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_tiny_lm.py"


def test_example_trains_and_samples_audio(tmp_path):
    write_good(tmp_path / "corpus")
    tokenize_corpus(
        TokenizeOptions(
            [str(tmp_path / "corpus")],
            tmp_path / "store",
            CodecRef("codeclab-tiny", random_init=True),
            workers=0,
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            str(tmp_path / "store"),
            "--steps",
            "30",
            "--context",
            "64",
            "--batch",
            "4",
            "--seconds",
            "0.5",
            "--out",
            str(tmp_path / "lm"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    losses = [float(x) for x in (tmp_path / "lm" / "losses.txt").read_text().split()]
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])  # it learns something
    info = sf.info(tmp_path / "lm" / "sample.wav")
    assert info.samplerate == 16000 and info.frames == 25 * 320
