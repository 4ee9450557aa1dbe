import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import codeclab
from codeclab.audio.io import load_audio
from codeclab.catalog.ref import CodecRef
from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
from codeclab.tokens.store import StoreError, TokenStore
from tests.corpus_files import BAD, GOOD

TINY = CodecRef("codeclab-tiny", random_init=True)


def options(inputs, out, **kw) -> TokenizeOptions:
    kw.setdefault("workers", 0)
    return TokenizeOptions(inputs=[str(i) for i in inputs], out=Path(out), codec=kw.pop("codec", TINY), **kw)


def contents(store_dir) -> dict:
    store = TokenStore(store_dir)
    return {r.id: (r.codes.tolist(), r.sha256, r.duration, r.text, r.start, r.end) for r in store}


def test_batched_equals_unbatched_equals_direct_encode(good_corpus, tmp_path):
    big = tokenize_corpus(options([good_corpus], tmp_path / "big", batch_seconds=30.0))
    one = tokenize_corpus(options([good_corpus], tmp_path / "one", batch_seconds=0.01))  # one item per batch
    assert big.tokenized == one.tokenized == len(GOOD)
    assert contents(tmp_path / "big") == contents(tmp_path / "one")
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    store = TokenStore(tmp_path / "big")
    for rel, *_ in GOOD:
        wav = torch.as_tensor(load_audio(good_corpus / rel, 16000, 1))
        assert np.array_equal(store[rel].codes, codec.encode(wav[None]).codes[0].numpy()), rel


def test_bad_files_are_listed_and_good_ones_tokenized(mixed_corpus, tmp_path):
    report = tokenize_corpus(options([mixed_corpus], tmp_path / "s"))
    assert report.tokenized == len(GOOD) and report.failed == len(BAD)
    store = TokenStore(tmp_path / "s")
    assert store.ids() == sorted(rel for rel, *_ in GOOD)
    errors = {e["id"]: e["reason"] for e in store.errors()}
    assert set(errors) == set(BAD)
    for rel, reason in BAD.items():
        assert reason in errors[rel]


def test_progress_knows_its_total_from_the_start_and_agrees_with_the_summary(mixed_corpus, tmp_path):
    """The first progress call already has the total (no "0/None files" while the codec loads), and the
    bar's real-time figure uses the same clock as the summary's (audio over the job's wall time)."""
    calls = []
    report = tokenize_corpus(
        options([mixed_corpus], tmp_path / "s"),
        lambda r, total: calls.append(
            (r.skipped + r.tokenized + r.failed, total, r.audio_seconds, r.wall_seconds)
        ),
    )
    assert calls[0][:2] == (0, len(GOOD) + len(BAD))
    done, total, audio, wall = calls[-1]
    assert done == total == report.items and audio == report.audio_seconds
    assert wall == report.wall_seconds


class Interrupt(Exception):
    pass


def test_interrupted_then_resumed_equals_uninterrupted(mixed_corpus, tmp_path):
    tokenize_corpus(options([mixed_corpus], tmp_path / "full"))
    calls = {"n": 0}

    def stop_midway(report, total):
        calls["n"] += 1
        if report.tokenized >= 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        tokenize_corpus(
            options([mixed_corpus], tmp_path / "cut", batch_seconds=0.01, flush_items=2), stop_midway
        )
    partial = TokenStore(tmp_path / "cut")
    assert 0 < len(partial) < len(GOOD)
    with pytest.raises(StoreError, match="--resume"):
        tokenize_corpus(options([mixed_corpus], tmp_path / "cut"))
    report = tokenize_corpus(options([mixed_corpus], tmp_path / "cut", resume=True))
    assert report.skipped > 0 and report.merged
    assert contents(tmp_path / "cut") == contents(tmp_path / "full")
    assert errors(tmp_path / "cut") == errors(tmp_path / "full")


def errors(store_dir) -> list:
    return [(e["id"], e["path"], e["reason"]) for e in TokenStore(store_dir).errors()]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_rerun_over_a_finished_store_is_a_no_op(mixed_corpus, tmp_path):
    tokenize_corpus(options([mixed_corpus], tmp_path / "s"))
    before = _snapshot(tmp_path / "s")
    for resume in (False, True):
        report = tokenize_corpus(options([mixed_corpus], tmp_path / "s", resume=resume))
        assert report.tokenized == 0 and report.failed == 0 and report.skipped == report.items
        assert report.failed_before == len(BAD)
    assert _snapshot(tmp_path / "s") == before


def test_retry_errors_after_fixing_a_file(mixed_corpus, tmp_path):
    tokenize_corpus(options([mixed_corpus], tmp_path / "s"))
    import shutil

    shutil.copy(mixed_corpus / "clip6.wav", mixed_corpus / "bad/empty.wav")  # the user fixes one file
    report = tokenize_corpus(options([mixed_corpus], tmp_path / "s", resume=True, retry_errors=True))
    assert report.tokenized == 1 and report.failed == len(BAD) - 1
    store = TokenStore(tmp_path / "s")
    assert "bad/empty.wav" in store and "bad/empty.wav" not in {e["id"] for e in store.errors()}


def test_two_shards_merged_equal_one_run(mixed_corpus, tmp_path):
    tokenize_corpus(options([mixed_corpus], tmp_path / "one"))
    first = tokenize_corpus(options([mixed_corpus], tmp_path / "two", shard=(0, 2)))
    assert not first.merged and 0 < first.items < len(GOOD) + len(BAD)
    second = tokenize_corpus(options([mixed_corpus], tmp_path / "two", shard=(1, 2)))
    assert second.merged and first.items + second.items == len(GOOD) + len(BAD)
    assert contents(tmp_path / "two") == contents(tmp_path / "one")
    assert errors(tmp_path / "two") == errors(tmp_path / "one")


def test_torchrun_environment_picks_the_shard(mixed_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    report = tokenize_corpus(options([mixed_corpus], tmp_path / "s"))
    assert report.shard == (1, 3)
    assert list((tmp_path / "s" / "done").iterdir())[0].name == "shard-00001-of-00003.json"


def test_long_files_stream_with_identical_codes(good_corpus, tmp_path):
    whole = tokenize_corpus(options([good_corpus], tmp_path / "whole"))
    streamed = tokenize_corpus(
        options([good_corpus], tmp_path / "streamed", long_seconds=0.5, chunk_seconds=0.3)
    )
    assert whole.tokenized == streamed.tokenized
    assert contents(tmp_path / "whole") == contents(tmp_path / "streamed")


def test_manifest_segments_and_text(good_corpus, tmp_path):
    manifest = tmp_path / "m.jsonl"
    rows = [
        {
            "id": "seg-a",
            "path": str(good_corpus / "clip6.wav"),
            "start": 0.5,
            "end": 1.5,
            "text": "hello world",
        },
        {"id": "seg-b", "path": str(good_corpus / "clip6.wav"), "start": 2.0},
        {"id": "seg-bad", "path": str(good_corpus / "clip6.wav"), "start": 9.0},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = tokenize_corpus(options([manifest], tmp_path / "s"))
    assert report.tokenized == 2 and report.failed == 1
    store = TokenStore(tmp_path / "s")
    assert store["seg-a"].text == "hello world" and store["seg-a"].duration == pytest.approx(1.0)
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    wav = torch.as_tensor(load_audio(good_corpus / "clip6.wav", 16000, 1, start=0.5, end=1.5))
    assert np.array_equal(store["seg-a"].codes, codec.encode(wav[None]).codes[0].numpy())


def test_worker_processes_give_the_same_store(mixed_corpus, tmp_path):
    tokenize_corpus(options([mixed_corpus], tmp_path / "inline", workers=0))
    tokenize_corpus(options([mixed_corpus], tmp_path / "workers", workers=2))
    assert contents(tmp_path / "inline") == contents(tmp_path / "workers")


def test_n_q_and_codec_mismatch(good_corpus, tmp_path):
    tokenize_corpus(options([good_corpus], tmp_path / "s", n_q=2))
    assert TokenStore(tmp_path / "s")[GOOD[0][0]].codes.shape[0] == 2
    other = CodecRef("codeclab-tiny", random_init=True, seed=1)
    with pytest.raises(StoreError, match="weights_sha256"):
        tokenize_corpus(options([good_corpus], tmp_path / "s", n_q=2, codec=other, resume=True))


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """A real crash: the CLI is killed with SIGKILL after its second part file, then resumed."""
    from codeclab.audio.signals import synthetic_speech

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    import soundfile as sf

    for i in range(40):
        sf.write(corpus / f"c{i:02d}.wav", synthetic_speech(1.5, 16000, seed=i).numpy()[0], 16000)
    cli = [
        sys.executable,
        "-m",
        "codeclab.cli.app",
        "tokenize",
        str(corpus),
        "--codec",
        "codeclab-tiny",
        "--random-init",
        "--workers",
        "0",
        "--batch-seconds",
        "1",
        "--flush-items",
        "1",
    ]
    subprocess.run(cli + ["--out", str(tmp_path / "full")], check=True, capture_output=True)
    proc = subprocess.Popen(
        cli + ["--out", str(tmp_path / "cut")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    data = tmp_path / "cut" / "data"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if data.is_dir() and len(list(data.glob("part-*.parquet"))) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 0 < len(TokenStore(tmp_path / "cut")) < 40
    subprocess.run(cli + ["--out", str(tmp_path / "cut"), "--resume"], check=True, capture_output=True)
    assert contents(tmp_path / "cut") == contents(tmp_path / "full")


def _killing_getitem(victim: str):
    from codeclab.pipelines.tokenize import DecodeDataset

    original = DecodeDataset.__getitem__

    def getitem(self, index):
        if self.items[index].id == victim:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker killed (e.g. by the OOM killer) mid-item
        return original(self, index)

    return getitem


def test_a_dead_worker_is_a_clear_error_and_resume_finishes(good_corpus, tmp_path, monkeypatch):
    from codeclab.pipelines.tokenize import DecodeDataset, WorkerError

    ids = sorted(rel for rel, *_ in GOOD)
    monkeypatch.setattr(DecodeDataset, "__getitem__", _killing_getitem(ids[-1]))
    started = time.perf_counter()
    with pytest.raises(WorkerError, match="the decode workers stopped.*rerun with --resume"):
        tokenize_corpus(options([good_corpus], tmp_path / "store", workers=1, worker_timeout=60.0))
    assert time.perf_counter() - started < 60  # no hang
    monkeypatch.undo()
    report = tokenize_corpus(options([good_corpus], tmp_path / "store", resume=True))
    assert report.failed == 0
    assert contents(tmp_path / "store") == contents_of_fresh_run(good_corpus, tmp_path)


def contents_of_fresh_run(corpus, tmp_path) -> dict:
    tokenize_corpus(options([corpus], tmp_path / "fresh"))
    return contents(tmp_path / "fresh")


def test_a_merge_killed_midway_is_repaired_by_resume(mixed_corpus, tmp_path):
    store = tmp_path / "store"
    tokenize_corpus(options([mixed_corpus], store))
    whole = contents(store)
    errors = (store / "errors.jsonl").read_text()
    (store / "index.pq").unlink()  # killed after the done marker, before the merge finished
    (store / "errors.jsonl").unlink()
    report = tokenize_corpus(options([mixed_corpus], store, resume=True))
    assert report.merged and report.tokenized == 0
    assert contents(store) == whole and (store / "errors.jsonl").read_text() == errors


def test_merge_refuses_a_store_with_unfinished_shards(mixed_corpus, tmp_path, capsys):
    from codeclab.cli.app import main

    tokenize_corpus(options([mixed_corpus], tmp_path / "store", shard=(0, 3)))
    with pytest.raises(SystemExit) as caught:
        main(["tokenize", "--merge", "--out", str(tmp_path / "store")])
    assert caught.value.code == 2
    assert "1 of 3 shards are finished (missing: 1, 2)" in capsys.readouterr().err
    assert not (tmp_path / "store" / "index.pq").exists()


# A driver that runs one tokenize in a fresh process and SIGKILLs itself at a named moment.
_KILL_DRIVER = r"""
import os, signal, sys
from pathlib import Path
import codeclab.pipelines.store_plan as plan
import codeclab.pipelines.tokenize as tok
import codeclab.tokens.store_merge as store
import pyarrow.parquet as pq
from codeclab.catalog.ref import CodecRef

stage, corpus, out = sys.argv[1:4]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if stage == "mid-part":  # half of the third part file written, not yet renamed
    real, calls = pq.write_table, []
    def write_table(table, where, **kw):
        calls.append(where)
        if len(calls) == 3 and "index" not in str(where):
            Path(where).write_bytes(b"PAR1 half a part")
            die()
        return real(table, where, **kw)
    pq.write_table = write_table
elif stage == "before-merge":  # every done marker written, the merge not started
    plan.merge = lambda s: die()
elif stage in ("mid-errors", "mid-index"):  # the merge killed while writing errors.jsonl / the index
    name = "errors.jsonl" if stage == "mid-errors" else "index.pq"
    real_text, real_write = store.atomic_write_text, store.atomic_write
    def guard(path, *args):
        if Path(path).name == name:
            die()
        return (real_text if isinstance(args[0], str) else real_write)(path, *args)
    store.atomic_write_text = store.atomic_write = guard
tok.tokenize_corpus(tok.TokenizeOptions(inputs=[corpus], out=Path(out), workers=0, flush_items=2,
    batch_seconds=1.0, codec=CodecRef("codeclab-tiny", random_init=True)))
"""


@pytest.mark.parametrize("stage", ["mid-part", "before-merge", "mid-errors", "mid-index"])
def test_sigkill_at_every_stage_then_resume_equals_uninterrupted(mixed_corpus, tmp_path, stage):
    reference = tmp_path / "reference"
    tokenize_corpus(options([mixed_corpus], reference, flush_items=2, batch_seconds=1.0))
    cut = tmp_path / "cut"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_DRIVER, stage, str(mixed_corpus), str(cut)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    report = tokenize_corpus(options([mixed_corpus], cut, flush_items=2, batch_seconds=1.0, resume=True))
    assert report.merged
    assert contents(cut) == contents(reference)
    assert TokenStore(cut).errors() == TokenStore(reference).errors()
    assert not [p for p in (cut / "data").iterdir() if p.name.startswith(".")]  # no temp file left


def test_two_concurrent_runs_on_one_store_lose_nothing(tmp_path):
    """Two processes tokenize into one --out at once: the second finds the shard locked and stops with a
    clear error (exit 2) while the first runs; a later --resume finds the store complete."""
    import soundfile as sf

    from codeclab.audio.signals import synthetic_speech

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    items = 200  # enough that the first run is still writing when the second has started
    for i in range(items):
        sf.write(corpus / f"c{i:03d}.wav", synthetic_speech(0.5, 16000, seed=i).numpy()[0], 16000)
    cli = [sys.executable, "-m", "codeclab.cli.app", "tokenize", str(corpus), "--codec", "codeclab-tiny"]
    cli += ["--random-init", "--workers", "0", "--batch-seconds", "0.5", "--flush-items", "1"]
    store = tmp_path / "shared"
    first = subprocess.Popen(cli + ["--out", str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((store / "data").glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run(cli + ["--out", str(store), "--resume"], capture_output=True, text=True)
    first_running = first.poll() is None
    first.communicate(timeout=300)
    assert first.returncode == 0
    if first_running:  # (on a very fast machine the first run may already be done; then nothing raced)
        assert second.returncode == 2, second.stderr
        assert "being written by another run" in second.stderr
    else:
        assert second.returncode == 0
    subprocess.run(cli + ["--out", str(store), "--resume"], check=True, capture_output=True)
    records = list(TokenStore(store))  # every part's checksum is verified on read
    assert sorted(r.id for r in records) == [f"c{i:03d}.wav" for i in range(items)]
