"""Corpus inputs in other tools' formats (gzip manifests, WebDataset, lhotse, Hugging Face), each built
with the real library, tokenize to the same codes as the same audio given as plain files, and their extra
columns arrive in the store."""

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codeclab.catalog.ref import CodecRef
from codeclab.corpora.formats import items_of
from codeclab.corpora.manifest import ManifestError, discover
from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
from codeclab.tokens.store import TokenStore

TINY = CodecRef("codeclab-tiny", random_init=True)
SPEAKERS = {"utt0": "ann", "utt1": "bob", "utt2": "cy"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three 16-bit WAV clips of different lengths (and rates) in a folder: the plain-file reference."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for i, (seconds, rate) in enumerate([(0.6, 16000), (1.1, 22050), (0.35, 16000)]):
        x = (0.2 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
        sf.write(root / f"utt{i}.wav", x, rate, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "store"
    tokenize_corpus(TokenizeOptions(inputs=[str(clips)], out=out, codec=TINY, workers=0))
    return {r.id.removesuffix(".wav"): r.codes.tolist() for r in TokenStore(out)}


def tokenize(inputs, out: Path, **kw) -> TokenStore:
    report = tokenize_corpus(
        TokenizeOptions(inputs=[str(i) for i in inputs], out=out, codec=TINY, workers=0, **kw)
    )
    assert report.failed == 0, TokenStore(out).errors()
    return TokenStore(out)


def codes_by_id(store: TokenStore) -> dict:
    return {r.id: r.codes.tolist() for r in store}


def test_gzip_jsonl_and_csv_manifests_keep_every_column(clips, reference, tmp_path):
    rows = [
        {
            "id": f"utt{i}",
            "path": str(clips / f"utt{i}.wav"),
            "speaker": SPEAKERS[f"utt{i}"],
            "split": "train" if i else "test",
            "language": "en",
            "snr": 20 + i,
        }
        for i in range(3)
    ]
    jsonl = tmp_path / "m.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    store = tokenize([jsonl], tmp_path / "s1")
    assert codes_by_id(store) == reference
    record = store["utt0"]
    assert record.meta == {"speaker": "ann", "split": "test", "language": "en", "snr": 20}
    assert Path(record.path).is_absolute() and Path(record.path) == clips / "utt0.wav"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    csv_gz = tmp_path / "m.csv.gz"
    csv_gz.write_bytes(gzip.compress(text.getvalue().encode()))
    store = tokenize([csv_gz], tmp_path / "s2")
    assert codes_by_id(store) == reference
    assert store["utt1"].meta["speaker"] == "bob" and store["utt1"].meta["split"] == "train"


def test_corrupt_gzip_manifest_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "m.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"id": "a", "path": "a.wav"}\n')[:-6])
    with pytest.raises(ManifestError, match="m.jsonl.gz.*gzip"):
        discover([str(bad)])


def test_webdataset_shards_by_brace_pattern(clips, reference, tmp_path):
    wds = pytest.importorskip("webdataset")
    (tmp_path / "shards").mkdir()
    for shard, ids in enumerate([["utt0", "utt1"], ["utt2"]]):
        with wds.TarWriter(str(tmp_path / "shards" / f"{shard:03d}.tar")) as sink:
            for key in ids:
                sink.write(
                    {
                        "__key__": key,
                        "flac": _flac(clips / f"{key}.wav"),
                        "json": {"speaker": SPEAKERS[key], "text": f"words of {key}"},
                    }
                )
    store = tokenize([str(tmp_path / "shards" / "{000..001}.tar")], tmp_path / "s")
    assert codes_by_id(store) == reference
    record = store["utt2"]
    assert record.meta == {"speaker": "cy"} and record.text == "words of utt2"
    assert record.path.endswith("001.tar::utt2.flac")


def test_webdataset_sample_without_audio_is_listed_as_an_error(tmp_path):
    wds = pytest.importorskip("webdataset")
    with wds.TarWriter(str(tmp_path / "a.tar")) as sink:
        sink.write({"__key__": "lonely", "json": {"speaker": "x"}})
    report = tokenize_corpus(
        TokenizeOptions(inputs=[str(tmp_path / "a.tar")], out=tmp_path / "s", codec=TINY, workers=0)
    )
    assert report.failed == 1
    assert "no audio member" in TokenStore(tmp_path / "s").errors()[0]["reason"]


def test_lhotse_cuts_recordings_and_shar(clips, reference, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    recordings = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(clips / f"utt{i}.wav", recording_id=f"utt{i}") for i in range(3)
    )
    sups = lhotse.SupervisionSet.from_segments(
        lhotse.SupervisionSegment(
            f"s{i}",
            f"utt{i}",
            0,
            recordings[f"utt{i}"].duration,
            text=f"hello {i}",
            speaker=SPEAKERS[f"utt{i}"],
            language="en",
        )
        for i in range(3)
    )
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=sups)
    cuts = lhotse.CutSet.from_cuts(c.with_id(c.recording_id).with_custom("split", "train") for c in cuts)
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    assert codes_by_id(tokenize([tmp_path / "recordings.jsonl.gz"], tmp_path / "r")) == reference
    store = tokenize([tmp_path / "cuts.jsonl.gz"], tmp_path / "c")
    assert codes_by_id(store) == reference
    assert store["utt1"].text == "hello 1"
    assert store["utt1"].meta == {
        "speaker": "bob",
        "language": "en",
        "split": "train",
        "recording_id": "utt1",
    }
    (tmp_path / "shar").mkdir()
    cuts.to_shar(tmp_path / "shar", fields={"recording": "flac"}, shard_size=2)
    shar = tokenize([tmp_path / "shar"], tmp_path / "sh")
    assert codes_by_id(shar) == reference  # FLAC members of 16-bit audio: the same samples
    assert shar["utt0"].meta["speaker"] == "ann" and shar["utt0"].path.endswith(
        "recording.000000.tar::utt0.flac"
    )


def test_lhotse_cut_with_offset_is_one_segment_item(clips, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    rec = lhotse.Recording.from_file(clips / "utt1.wav", recording_id="utt1")
    cut = lhotse.MonoCut("seg", start=0.25, duration=0.5, channel=0, recording=rec)
    lhotse.CutSet.from_cuts([cut]).to_file(tmp_path / "cuts.jsonl")
    (item,) = items_of(str(tmp_path / "cuts.jsonl"))
    assert (item.id, item.start, item.end, item.path) == ("seg", 0.25, 0.75, str(clips / "utt1.wav"))
    plain = tmp_path / "m.jsonl"
    plain.write_text(
        json.dumps({"id": "seg", "path": str(clips / "utt1.wav"), "start": 0.25, "end": 0.75}) + "\n"
    )
    assert codes_by_id(tokenize([tmp_path / "cuts.jsonl"], tmp_path / "a")) == codes_by_id(
        tokenize([plain], tmp_path / "b")
    )


def test_lhotse_supervisions_alone_are_refused(tmp_path):
    lhotse = pytest.importorskip("lhotse")
    lhotse.SupervisionSet.from_segments([lhotse.SupervisionSegment("s", "r", 0, 1)]).to_file(
        tmp_path / "s.jsonl.gz"
    )
    with pytest.raises(ManifestError, match="SupervisionSet names no audio"):
        discover([str(tmp_path / "s.jsonl.gz")])


def test_hf_dataset_on_disk_and_parquet(clips, reference, tmp_path):
    datasets = pytest.importorskip("datasets")
    ids = ["utt0", "utt1", "utt2"]
    table = {
        "id": ids,
        "audio": [{"bytes": (clips / f"{i}.wav").read_bytes(), "path": f"{i}.wav"} for i in ids],
        "speaker": [SPEAKERS[i] for i in ids],
        "text": [f"text {i}" for i in ids],
    }
    ds = datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"train": ds.select([0, 1]), "test": ds.select([2])}).save_to_disk(tmp_path / "dd")
    store = tokenize([tmp_path / "dd"], tmp_path / "s1")
    assert codes_by_id(store) == reference
    assert store["utt2"].meta == {"speaker": "cy", "split": "test"} and store["utt2"].text == "text utt2"
    ds.to_parquet(tmp_path / "train-00000-of-00001.parquet")
    store = tokenize([tmp_path / "train-00000-of-00001.parquet"], tmp_path / "s2")
    assert codes_by_id(store) == reference
    assert store["utt0"].meta == {"speaker": "ann", "split": "train"}


def test_hf_dataset_without_audio_column_is_refused(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"id": ["a"], "x": [1]}).save_to_disk(tmp_path / "d")
    with pytest.raises(ManifestError, match="no Audio column"):
        discover([str(tmp_path / "d")])


def _flac(wav: Path) -> bytes:
    x, rate = sf.read(wav, dtype="int16")
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def test_a_compressed_tar_is_refused_with_the_fix(tmp_path):
    (tmp_path / "shard.tar.gz").write_bytes(gzip.compress(b"x"))
    with pytest.raises(ManifestError, match="shard.tar.gz: a compressed tar.*decompress"):
        discover([str(tmp_path / "shard.tar.gz")])


def test_lhotse_cuts_codeclab_cannot_read_become_error_items(clips, tmp_path):
    """A URL source and one channel of a stereo recording are listed in errors.jsonl with the reason."""
    lhotse = pytest.importorskip("lhotse")
    x = np.zeros((8000, 2), dtype=np.float32)
    sf.write(tmp_path / "stereo.wav", x, 16000)
    stereo = lhotse.Recording.from_file(tmp_path / "stereo.wav", recording_id="stereo")
    url = lhotse.Recording(
        id="far",
        sources=[lhotse.AudioSource(type="url", channels=[0], source="https://example.org/a.wav")],
        sampling_rate=16000,
        num_samples=16000,
        duration=1.0,
    )
    cuts = [
        lhotse.MonoCut("left", start=0, duration=0.5, channel=0, recording=stereo),
        lhotse.MonoCut("far", start=0, duration=1.0, channel=0, recording=url),
    ]
    lhotse.CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    report = tokenize_corpus(
        TokenizeOptions(inputs=[str(tmp_path / "cuts.jsonl.gz")], out=tmp_path / "s", codec=TINY, workers=0)
    )
    assert report.failed == 2 and report.tokenized == 0
    reasons = {e["id"]: e["reason"] for e in TokenStore(tmp_path / "s").errors()}
    assert "channel(s) [0] of the 2-channel recording" in reasons["left"]
    assert "'url' source" in reasons["far"]


def test_parquet_with_plain_bytes_and_path_structs(clips, reference, tmp_path):
    """Parquet written by pyarrow alone (no Hugging Face schema metadata): the bytes+path struct column is
    the audio; no id column: ids are NAME/ROW."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"bytes": (clips / f"utt{i}.wav").read_bytes(), "path": f"utt{i}.wav"} for i in range(3)]
    pq.write_table(pa.table({"sound": rows, "speaker": ["ann", "bob", "cy"]}), tmp_path / "clips.parquet")
    store = tokenize([tmp_path / "clips.parquet"], tmp_path / "s")
    assert store.ids() == ["clips/00000000", "clips/00000001", "clips/00000002"]
    assert store["clips/00000001"].codes.tolist() == reference["utt1"]
    assert store["clips/00000002"].meta == {"speaker": "cy"}
