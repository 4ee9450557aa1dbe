"""Where each file of a token store lives (`StoreLayout`): the one place a store's paths are spelled.
The layout itself is described in `codeclab.tokens.store_layout`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATS_FILE = "stats.json"  # written by merge: code statistics per codebook (entropy, usage)


INDEX_FILE = "index.pq"


LEGACY_INDEX_FILE = "index.parquet"  # what older stores call their index (still read)


CARD_FILE = "README.md"


PART_RE = re.compile(r"part-(\d{5})-of-(\d{5})-(\d{6})\.parquet$")


@dataclass(frozen=True)
class StoreLayout:
    """Where each file of a store directory lives (the layout in this module's docstring): the one place
    those paths are spelled. `StoreLayout(root)`; every path is under `root`."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def metadata(self) -> Path:
        return self.root / "tokens.json"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def errors_dir(self) -> Path:
        return self.root / "errors"

    @property
    def done_dir(self) -> Path:
        return self.root / "done"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def index(self) -> Path:
        """The index to read: `index.pq`, or an older store's `index.parquet` when only that exists."""
        legacy = self.root / LEGACY_INDEX_FILE
        return (
            legacy if legacy.is_file() and not (self.root / INDEX_FILE).is_file() else self.root / INDEX_FILE
        )

    @property
    def index_to_write(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def legacy_index(self) -> Path:
        return self.root / LEGACY_INDEX_FILE

    @property
    def errors(self) -> Path:
        """All failures, sorted by id (written by merge)."""
        return self.root / "errors.jsonl"

    @property
    def stats(self) -> Path:
        return self.root / STATS_FILE

    @property
    def card(self) -> Path:
        return self.root / CARD_FILE

    def part(self, shard: int, num_shards: int, flush: int) -> Path:
        return self.data_dir / f"part-{shard_name(shard, num_shards)}-{flush:06d}.parquet"

    def error_log(self, shard: int, num_shards: int) -> Path:
        return self.errors_dir / f"shard-{shard_name(shard, num_shards)}.jsonl"

    def error_logs(self) -> list[Path]:
        """Every shard's error log, sorted."""
        return sorted(self.errors_dir.glob("shard-*.jsonl")) if self.errors_dir.is_dir() else []

    def done_marker(self, shard: int, num_shards: int) -> Path:
        return self.done_dir / f"shard-{shard_name(shard, num_shards)}.json"

    def lock(self, shard: int, num_shards: int) -> Path:
        return self.locks_dir / f"shard-{shard_name(shard, num_shards)}.lock"

    def leftovers(self, shard: int, num_shards: int) -> list[Path]:
        """Temporary files a killed writer of this shard left (parts, done markers, error logs)."""
        name = shard_name(shard, num_shards)
        return [
            *self.data_dir.glob(f".part-{name}-*"),
            *self.done_dir.glob(f".shard-{name}.json.*"),
            *self.errors_dir.glob(f".shard-{name}.jsonl.*"),
        ]

    def is_store(self) -> bool:
        """True when the directory holds a store's metadata (tokens.json)."""
        return self.metadata.is_file()

    def names(self) -> tuple[str, ...]:
        """The top-level names a store may hold (nothing else is written into it)."""
        return (
            self.metadata.name,
            self.data_dir.name,
            self.errors_dir.name,
            self.done_dir.name,
            self.locks_dir.name,
            INDEX_FILE,
            LEGACY_INDEX_FILE,
            self.errors.name,
            STATS_FILE,
            CARD_FILE,
        )


def shard_name(shard: int, num_shards: int) -> str:
    return f"{shard:05d}-of-{num_shards:05d}"
