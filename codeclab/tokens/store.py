"""The token store: a directory of Parquet shards holding a corpus's codes (`codeclab.TokenStore`).

Its pieces, one job each: `store_layout` (what a store directory holds, its metadata and rows),
`store_writer` (shards written in atomic parts, what a resumed run finds finished), `store_merge` (the
index, merged errors, statistics and card), `store_reader` (`TokenStore`), `store_stats`, `store_card`,
`store_index`, `store_paths` (`StoreLayout`), `part_cache`, `store_errors`. This module gathers their public names, as before the split.
"""

from __future__ import annotations

from codeclab.tokens.store_card import card_header, dataset_card, features_yaml  # noqa: F401
from codeclab.tokens.store_errors import StoreError  # noqa: F401
from codeclab.tokens.store_layout import *  # noqa: F401,F403
from codeclab.tokens.store_layout import _check_column_types, _read_errors, _schema  # noqa: F401
from codeclab.tokens.store_merge import merge  # noqa: F401
from codeclab.tokens.store_paths import *  # noqa: F401,F403
from codeclab.tokens.store_reader import TokenStore  # noqa: F401
from codeclab.tokens.store_stats import code_counts, code_statistics, sparse_counts  # noqa: F401
from codeclab.tokens.store_writer import ShardWriter, finished_ids, finished_sources  # noqa: F401
