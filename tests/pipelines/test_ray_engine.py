"""`tokenize --engine ray` on a local Ray cluster that the tests start on 127.0.0.1: the same store as
the local engine, a killed run resumed equals an uninterrupted one, a killed actor is replaced without
losing an item, and a corrupt file lands in errors.jsonl."""

import pytest

from codeclab.pipelines.tokenize import tokenize_corpus
from tests.corpus_files import BAD, GOOD
from tests.pipelines.test_tokenize import contents, options

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster bound to 127.0.0.1, stopped at the end of the module."""
    from codeclab.pipelines.ray_engine import start_ray

    start_ray(None)
    yield
    ray.shutdown()


def errors(store) -> dict:
    from codeclab.tokens.store import TokenStore

    return {e["id"]: e["reason"] for e in TokenStore(store).errors()}


def test_ray_store_equals_the_local_store_and_lists_bad_files(cluster, mixed_corpus, tmp_path):
    from codeclab.pipelines.ray_engine import RayOptions, tokenize_with_ray

    local = tokenize_corpus(options([mixed_corpus], tmp_path / "local"))
    report = tokenize_with_ray(options([mixed_corpus], tmp_path / "ray"), RayOptions(actors=1, batch_items=4))
    assert report.merged and report.tokenized == len(GOOD) and report.failed == len(BAD)
    assert contents(tmp_path / "ray") == contents(tmp_path / "local") and local.merged
    assert errors(tmp_path / "ray") == errors(tmp_path / "local") and set(errors(tmp_path / "ray")) == set(
        BAD
    )


def test_a_killed_ray_run_resumed_equals_an_uninterrupted_one(cluster, good_corpus, tmp_path):
    from codeclab.pipelines.ray_engine import RayOptions, tokenize_with_ray

    tokenize_corpus(options([good_corpus], tmp_path / "whole"))
    seen = []

    def crash_after_three(report, total):
        seen.append(report.tokenized)
        if report.tokenized >= 3:
            raise KeyboardInterrupt  # the driver killed midway (parts flushed every 2 items survive)

    with pytest.raises(KeyboardInterrupt):
        tokenize_with_ray(
            options([good_corpus], tmp_path / "s", flush_items=2),
            RayOptions(batch_items=1),
            crash_after_three,
        )
    resumed = tokenize_with_ray(
        options([good_corpus], tmp_path / "s", resume=True), RayOptions(batch_items=2)
    )
    assert resumed.skipped >= 2 and resumed.merged
    assert contents(tmp_path / "s") == contents(tmp_path / "whole")


def test_a_killed_actor_is_replaced_and_no_item_is_lost(cluster, good_corpus, tmp_path):
    from codeclab.pipelines.ray_engine import RayOptions, tokenize_with_ray

    flag = tmp_path / "died"  # the first actor call exits its process (os._exit), once
    tokenize_corpus(options([good_corpus], tmp_path / "whole"))
    report = tokenize_with_ray(
        options([good_corpus], tmp_path / "s"), RayOptions(batch_items=2, die_once_flag=str(flag))
    )
    assert flag.is_file()  # an actor did die
    assert report.tokenized == len(GOOD) and report.failed == 0
    assert contents(tmp_path / "s") == contents(tmp_path / "whole")


def test_the_ray_engine_refuses_static_shards(tmp_path, good_corpus):
    from codeclab.pipelines.ray_engine import RayOptions, RayTokenizeJob

    with pytest.raises(ValueError, match="drop --shard"):
        RayTokenizeJob(options([good_corpus], tmp_path / "s", shard=(0, 2)), RayOptions())


def test_without_ray_the_engine_says_what_to_install(tmp_path, good_corpus, monkeypatch):
    import sys

    from codeclab.pipelines.ray_engine import start_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        start_ray(None)
