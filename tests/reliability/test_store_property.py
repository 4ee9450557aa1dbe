"""Property (issue 33): any bounded sequence of runs killed at some moment, resumes, merges, second runs
over the same inputs and deleted indexes ends, after one last `--resume`, with every source item present
exactly once with the codes an uninterrupted run gives, or with an error that names what is missing.

A kill is simulated in the process by an exception that nothing in codeclab catches (`Killed` derives
from BaseException), raised at the n-th write of a part, an index, an errors log or a done marker: like
SIGKILL, it stops the run between two writes (the SIGKILL tests in tests/pipelines run real processes)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codeclab._files as files
import codeclab.tokens.store_merge as store_merge
import codeclab.tokens.store_writer as store_writer
from codeclab.pipelines.tokenize import tokenize_corpus
from codeclab.tokens.store import StoreError, merge


class Killed(BaseException):
    """The process died here."""


def killing_writes(monkeypatch, after: int) -> None:
    """Make the `after`-th atomic write (0 = the first) or part write die before it lands."""
    count = {"n": 0}
    real_atomic, real_parquet = files.atomic_write, pq.write_table

    def tick() -> None:
        count["n"] += 1
        if count["n"] > after:
            raise Killed()

    def atomic_write(path, writer):
        tick()
        return real_atomic(path, writer)

    def write_table(*args, **kwargs):
        tick()
        return real_parquet(*args, **kwargs)

    for module in (store_writer, store_merge):  # the store's two writers of files
        monkeypatch.setattr(module, "atomic_write", atomic_write)
        monkeypatch.setattr(
            module, "atomic_write_text", lambda p, t: atomic_write(p, lambda tmp: tmp.write_text(t))
        )
    monkeypatch.setattr(pq, "write_table", write_table)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("killed run"), st.integers(0, 12)),
        st.tuples(st.just("resume"), st.just(0)),
        st.tuples(st.just("second run"), st.just(0)),
        st.tuples(st.just("merge"), st.just(0)),
        st.tuples(st.just("delete index"), st.just(0)),
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tests.corpus_files import write_good
    from tests.pipelines.test_tokenize import contents, options

    root = tmp_path_factory.mktemp("property")
    corpus = root / "corpus"
    write_good(corpus)
    tokenize_corpus(options([corpus], root / "reference", flush_items=2, batch_seconds=1.0))
    return corpus, contents(root / "reference")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_any_sequence_ends_complete_or_names_what_is_missing(reference, tmp_path_factory, operations):
    from tests.pipelines.test_tokenize import contents, options

    corpus, expected = reference
    out = tmp_path_factory.mktemp("store") / "s"
    run = dict(flush_items=2, batch_seconds=1.0)
    for name, moment in operations:
        with pytest.MonkeyPatch.context() as monkeypatch:
            try:
                if name == "killed run":
                    killing_writes(monkeypatch, moment)
                    tokenize_corpus(options([corpus], out, resume=True, **run))
                elif name in ("resume", "second run"):
                    tokenize_corpus(options([corpus], out, resume=name == "resume", **run))
                elif name == "merge" and (out / "tokens.json").is_file():
                    merge(out)
                elif name == "delete index":
                    (out / "index.pq").unlink(missing_ok=True)
            except Killed:
                pass
            except StoreError as err:  # refusals along the way must say why
                assert str(out) in str(err) or "store" in str(err)
    try:
        tokenize_corpus(options([corpus], out, resume=True, **run))
    except StoreError as err:
        message = str(err)
        assert "missing" in message or "shard" in message, message
        return
    assert contents(out) == expected
