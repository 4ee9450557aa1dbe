import json
import shutil

import pytest
import soundfile as sf

from codeclab.corpora.demo import build_demo_corpus

NEEDED = ["espeak-ng", "flite", "text2wave", "fluidsynth"]


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in NEEDED),
    reason="the demo corpus's Debian packages are missing (make corpus)",
)
def test_demo_corpus_manifest_every_file_decodes(tmp_path):
    summary = build_demo_corpus(
        tmp_path, espeak=14, flite=5, festival=2, klettres=6, asterisk=4, music=1, samples=6
    )
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == summary["items"] > 30
    for row in rows:
        info = sf.info(tmp_path / row["path"])
        assert info.frames > 0 and abs(info.frames / info.samplerate - row["duration"]) < 1e-3
        assert row["licence"] and row["split"] in ("train", "validation")
    sources = {r["source"] for r in rows}
    assert {"espeak", "flite", "festival", "klettres", "asterisk", "samples"} <= sources
    if "music" not in summary["skipped"]:
        assert "music" in sources
    assert len({r["language"] for r in rows if r["source"] == "espeak"}) >= 10
    assert any(r["split"] == "validation" for r in rows)
    again = build_demo_corpus(
        tmp_path / "again", espeak=14, flite=5, festival=2, klettres=6, asterisk=4, music=0, samples=6
    )
    first = {r["id"]: r["split"] for r in rows}
    second = [json.loads(line) for line in (tmp_path / "again" / "manifest.jsonl").read_text().splitlines()]
    assert all(first[r["id"]] == r["split"] for r in second if r["id"] in first)  # a fixed split
    assert again["items"] > 0
