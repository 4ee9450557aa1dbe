"""Planning a 1 M-row manifest streams it: a rank of 8 holds its eighth of the items, never the whole
file (slow: writes the manifest and plans in a fresh process to measure its peak memory)."""

import gzip
import json
import subprocess
import sys

import pytest

from tests.peak_memory import PEAK_KIB

PLAN = (
    PEAK_KIB
    + """
import sys
from codeclab.corpora.manifest import discover
base = peak_kib() / 1024
import zlib
items = discover([sys.argv[1]], keep=lambda i: zlib.crc32(i.encode()) % 8 == 0)
print(len(items), peak_kib() / 1024 - base)
"""
)


@pytest.mark.slow
def test_planning_a_million_row_manifest_holds_only_the_rank_share(tmp_path):
    manifest = tmp_path / "m.jsonl.gz"
    with gzip.open(manifest, "wt") as fh:
        for i in range(1_000_000):
            fh.write(
                json.dumps(
                    {"id": f"s{i % 5000:04d}/u{i:07d}", "path": f"a/{i}.flac", "speaker": f"s{i % 5000}"}
                )
                + "\n"
            )
    out = subprocess.run(
        [sys.executable, "-c", PLAN, str(manifest)], capture_output=True, text=True, check=True
    )
    items, grown_mib = (float(x) for x in out.stdout.split())
    assert 120_000 < items < 130_000  # about an eighth
    assert grown_mib < 120, f"planning grew the process by {grown_mib:.0f} MiB"  # all 1 M items: ~490 MiB
