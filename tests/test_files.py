"""codeclab._files: one sha256, one atomic write whose files follow the umask."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest

from codeclab._files import atomic_write_bytes, atomic_write_text, current_umask, is_temp_file, sha256_file


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sha256_file_matches_hashlib(tmp_path):
    data = np.random.default_rng(0).bytes(3 << 20)  # several read blocks
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_current_umask_reads_without_changing_it(umask_022):
    assert current_umask() == 0o022
    assert current_umask() == 0o022


def test_atomic_write_follows_umask_and_leaves_no_temp_file(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.json", "{}\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644  # mkstemp alone gives 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    from codeclab._files import atomic_write

    atomic_write_text(tmp_path / "a.txt", "old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "a.txt", broken)
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_is_temp_file():
    assert is_temp_file(".index.parquet.k2j3h.tmp")
    assert not is_temp_file("index.parquet")


def test_store_parts_and_saved_weights_follow_umask(tmp_path, umask_022):
    from codeclab.catalog.loading import load_codec, save_pretrained
    from codeclab.tokens.store import ShardWriter, TokenRecord
    from tests.tokens.test_store import META

    writer = ShardWriter(tmp_path / "store", {**META, "n_q": 1})
    writer.add(TokenRecord("a", np.zeros((1, 3), dtype=np.int64), "p", "s", 0.06, 16000))
    writer.finish({})
    save_pretrained(load_codec("codeclab-16k-speech", random_init=True), tmp_path / "weights")
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()] + list(
        (tmp_path / "weights").iterdir()
    )
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
