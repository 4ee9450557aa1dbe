"""R1 (reliability report 2026-12-04): a decode worker killed with SIGKILL while it writes a large
result into the shared pipe must end `tokenize` with a WorkerError within the timeout, never hang, and
`--resume` must then finish the store."""

from __future__ import annotations

import subprocess
import sys
import time

from codeclab.tokens.store import TokenStore

# A worker that returns one very large item (its message is much larger than a pipe's buffer) and kills
# itself while the main process is busy encoding, so the pipe holds half a message.
_DRIVER = r"""
import os, signal, sys, threading, time
from pathlib import Path
import numpy as np
import codeclab.pipelines.tokenize as tok
from codeclab.catalog.ref import CodecRef

corpus, out = sys.argv[1:3]
real_getitem, real_encode = tok.DecodeDataset.__getitem__, tok.TokenizeJob._encode_batch
def getitem(self, index):
    rec = real_getitem(self, index)
    if index == 2 and "audio" in rec:
        rec["audio"] = np.zeros((1, 4_000_000), dtype=np.float32)  # 16 MB through the result pipe
        threading.Timer(0.7, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
    return rec
def encode(batch, codec, n_q):
    time.sleep(1.5)  # the main process is busy while the worker writes and dies
    return real_encode(batch, codec, n_q)
tok.DecodeDataset.__getitem__ = getitem
tok.TokenizeJob._encode_batch = staticmethod(encode)
try:
    tok.tokenize_corpus(tok.TokenizeOptions(inputs=[corpus], out=Path(out), workers=1, flush_items=1,
        batch_seconds=0.5, worker_timeout=20.0, codec=CodecRef("codeclab-tiny", random_init=True)))
except tok.WorkerError as err:
    print("WORKER ERROR:", err)
    sys.exit(7)
"""


def test_sigkilled_worker_mid_write_is_a_worker_error_not_a_hang(good_corpus, tmp_path):
    from codeclab.pipelines.tokenize import tokenize_corpus
    from tests.pipelines.test_tokenize import contents, contents_of_fresh_run, options

    store = tmp_path / "store"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(good_corpus), str(store)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.perf_counter() - started < 100
    assert proc.returncode == 7, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "rerun with --resume" in proc.stdout
    assert "encoding its items one by one" not in proc.stderr  # the death is not taken for a bad batch
    report = tokenize_corpus(options([good_corpus], store, resume=True))
    assert report.failed == 0
    assert contents(store) == contents_of_fresh_run(good_corpus, tmp_path)
    assert len(TokenStore(store)) == len(contents(store))
