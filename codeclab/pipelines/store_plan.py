"""One shard of a tokenization run against its store, in one chain of calls: what is left to do
(`plan_against_store`: the target checked, finished and failed ids read, ids whose stored audio is another
file refused), and what happens when the shard ends (`settle_store`: merge once every shard is done)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codeclab._files import sha256_file
from codeclab.corpora.manifest import AudioItem
from codeclab.tokens.store import (
    StoreError,
    StoreLayout,
    check_store_target,
    finished_ids,
    finished_sources,
    index_is_fresh,
    merge,
    shards_done,
)


@dataclass
class ShardPlan:
    """This shard's items against its store: `todo` to encode, `skipped` already finished (tokenized, or
    failed before when errors are not retried), `failed_before` of them, and `finished` when the shard's
    done marker is there and nothing is left."""

    todo: list[AudioItem]
    skipped: int
    failed_before: int
    finished: bool


def plan_against_store(
    store: Path, items: list[AudioItem], shard: int, num_shards: int, resume: bool, retry_errors: bool
) -> ShardPlan:
    """What is left of `items` in `store`; a store holding some of them without `resume` is refused."""
    check_store_target(store)  # --out must be a store, or new, or empty
    layout = StoreLayout(store)
    has_store = layout.is_store()
    done, failed = finished_ids(store) if has_store else (set(), set())
    if has_store and done:
        check_same_sources(store, [it for it in items if it.id in done])
    finished = done | (set() if retry_errors else failed)
    todo = [it for it in items if it.id not in finished]
    skipped = len(items) - len(todo)
    if has_store and todo and skipped and not resume:
        raise StoreError(
            f"{store}: already holds {skipped} of this shard's {len(items)} items; pass --resume to "
            "finish the rest, or choose a new --out"
        )
    failed_before = 0 if retry_errors else sum(1 for it in items if it.id in failed)
    shard_finished = not todo and layout.done_marker(shard, num_shards).is_file()
    return ShardPlan(todo, skipped, failed_before, shard_finished)


def settle_store(store: Path, num_shards: int, wrote: bool) -> bool:
    """After a shard ends: merge the store when every shard is done (the last shard to finish merges),
    after this run `wrote` to it, or when its index is not fresh (a rerun repairs a merge that was killed).
    True when the store was merged now, or (after a run that wrote nothing) its index is fresh."""
    if shards_done(store, num_shards) and (wrote or not index_is_fresh(store)):
        merge(store)
        return True
    return not wrote and index_is_fresh(store)


def check_same_sources(store: Path, items: list[AudioItem], shown: int = 3) -> None:
    """Raise StoreError when ids this run would skip as finished hold other audio in the store (another
    file, or another segment of it): a run keyed by id alone would keep the other file's codes under
    this run's ids and exit 0. A recorded path that resolves to the item's file is the same source; a
    different path counts as the same source only when the file's sha256 matches the recorded one."""
    recorded = finished_sources(store, {it.id for it in items})
    clashes: list[str] = []
    for item in items:
        path, sha, start, end = recorded.get(item.id, (None, None, None, None))
        if path is None:
            continue
        same_segment = (start, end) == (item.start, item.end)
        if item.member is not None:  # audio inside a container: the same container and member
            same_file = path == item.location or (
                _same_path(path.split("::")[0], item.path) and path.endswith("::" + item.member.describe())
            )
        else:
            same_file = _same_path(path, item.path) or (
                Path(item.path).is_file() and sha == _sha256_or_none(item.path)
            )
        if not (same_file and same_segment):
            clashes.append(f"{item.id} (stored from {path}, this run has {item.describe()})")
    if clashes:
        raise StoreError(
            f"{store}: {len(clashes)} ids of this run already hold other audio in the store: "
            + "; ".join(clashes[:shown])
            + (" ..." if len(clashes) > shown else "")
            + ". Choose another --out, or give the inputs distinct ids (a manifest with an id column, or "
            "the common parent directory as the input)"
        )


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _sha256_or_none(path: str) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None
