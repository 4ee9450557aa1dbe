"""The docs/llm.md example of extending a pretrained causal LM runs end to end on a store: the tokenizer
grows by the audio tokens, the embeddings by as many rows (old rows unchanged), and training runs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codeclab.tokens.store import TokenRecord
from tests.token_stores import store_meta, write_store

transformers = pytest.importorskip("transformers", reason="the llm extra (transformers) is not installed")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "extend_pretrained_lm.py"


def test_extend_a_pretrained_lm_with_audio_tokens(tmp_path):
    rng = np.random.default_rng(0)
    records = [
        TokenRecord(f"u{i}", rng.integers(0, 32, (2, 20)), "p", "s", 0.4, 16000, text="a small model")
        for i in range(6)
    ]
    write_store(tmp_path / "tokens", store_meta(2, 32), records)
    cmd = [sys.executable, str(EXAMPLE), str(tmp_path / "tokens"), "--make-tiny-lm", str(tmp_path / "lm")]
    out = subprocess.run(
        [*cmd, "--out", str(tmp_path / "out"), "--steps", "3", "--context", "128"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "step 3: loss" in out.stdout
    base = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    grown = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    old = base.get_input_embeddings().weight.shape[0]
    assert grown.get_input_embeddings().weight.shape[0] == len(tok) > old + 2 * 32
