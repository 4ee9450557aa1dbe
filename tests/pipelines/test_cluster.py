"""Tokenizing on a cluster without Ray: Slurm's variables pick the shard, and a store may be resumed with
another shard count (finished items are known per item) and still merges to the single-run store."""

import pytest

from codeclab._launch import launch_place
from codeclab.pipelines.tokenize import shard_from_env, tokenize_corpus
from codeclab.tokens.store import TokenStore, shard_status
from tests.pipelines.test_tokenize import contents, options


def test_slurm_variables_pick_the_shard(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    assert shard_from_env() == (3, 8)
    assert launch_place(slurm=True).local_rank == 1
    assert launch_place().world == 1  # the trainer reads torchrun's variables only
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert shard_from_env() == (1, 2)  # torchrun's win when both are set
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_PROCID", "9")
    with pytest.raises(ValueError, match="SLURM_PROCID and SLURM_NTASKS"):
        shard_from_env()


def test_a_store_resumed_with_another_shard_count_merges(mixed_corpus, tmp_path):
    whole = tokenize_corpus(options([mixed_corpus], tmp_path / "one"))
    assert whole.merged
    store = tmp_path / "resharded"
    tokenize_corpus(options([mixed_corpus], store, shard=(0, 4)))  # a 4-way run: two shards finish ...
    tokenize_corpus(options([mixed_corpus], store, shard=(2, 4)))
    first = tokenize_corpus(options([mixed_corpus], store, shard=(0, 2), resume=True))  # ... resumed 2-way
    assert not first.merged and first.skipped > 0
    second = tokenize_corpus(options([mixed_corpus], store, shard=(1, 2), resume=True))
    assert second.merged
    assert shard_status(store) == (2, {0, 1})  # `tokenize --merge` reads the latest run's count
    assert contents(store) == contents(tmp_path / "one")

    def reasons(path):
        return {e["id"]: e["reason"] for e in TokenStore(path).errors()}

    assert reasons(store) == reasons(tmp_path / "one") and reasons(store)
