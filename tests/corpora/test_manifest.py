import json

import pytest

from codeclab.corpora.manifest import ManifestError, discover, read_manifest
from tests.corpus_files import GOOD


def test_directory_ids_are_relative_paths(good_corpus):
    items = discover([str(good_corpus)])
    assert [it.id for it in items] == sorted(rel for rel, *_ in GOOD)
    (good_corpus / "notes.txt").write_text("not audio")
    assert len(discover([str(good_corpus)])) == len(GOOD)


def test_glob(good_corpus):
    items = discover([str(good_corpus / "**" / "*.wav")])
    assert sorted(it.id for it in items) == sorted(rel for rel, *_ in GOOD if rel.endswith(".wav"))
    with pytest.raises(ManifestError, match="matches no audio"):
        discover([str(good_corpus / "*.nothing")])


def test_jsonl_and_csv_manifests(good_corpus, tmp_path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        json.dumps(
            {"id": "u1", "path": str(good_corpus / "clip6.wav"), "start": 0.2, "end": 1.0, "text": "hello"}
        )
        + "\n"
        + json.dumps({"id": "u2", "path": "corpus/clip6.wav"})
        + "\n"
    )
    items = discover([str(jsonl)])
    assert items[0].start == 0.2 and items[0].end == 1.0 and items[0].text == "hello"
    assert items[1].path == str(tmp_path / "corpus/clip6.wav")  # relative to the manifest
    csv = tmp_path / "m.csv"
    csv.write_text("id,path,start,end,text\nx,corpus/clip0.wav,,,\ny,corpus/clip6.wav,0.1,0.5,hi there\n")
    rows = read_manifest(csv)
    assert rows[0].start is None and rows[1].end == 0.5 and rows[1].text == "hi there"


def test_split_and_language_columns_are_read_and_written(good_corpus, tmp_path):
    from codeclab.corpora.manifest import write_manifest
    from codeclab.train.dataset import split_of

    jsonl = tmp_path / "m.jsonl"
    rows = [
        {"id": "a", "path": str(good_corpus / "clip0.wav"), "split": "validation", "language": "de"},
        {"id": "b", "path": str(good_corpus / "clip6.wav"), "split": "train"},
    ]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = read_manifest(jsonl)
    assert [(it.split, it.language) for it in items] == [("validation", "de"), ("train", None)]
    assert [split_of(it, 0.5) for it in items] == ["validation", "train"]
    write_manifest(items, tmp_path / "again.jsonl")
    again = read_manifest(tmp_path / "again.jsonl")
    assert [(it.id, it.path, it.split, it.language) for it in again] == [
        (it.id, it.path, it.split, it.language) for it in items
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "a"}\n', "m.jsonl:1: missing 'path'"),
        ('{"path": "x.wav"}\n', "missing 'id'"),
        ('{"id": "a", "path": "x.wav"}\n{bad json\n', "m.jsonl:2: invalid JSON"),
        ('{"id": "a", "path": "x.wav", "start": "soon"}\n', "start must be a number"),
        ('{"id": "a", "path": "x.wav", "start": 2, "end": 1}\n', "end .* must be after start"),
        ('{"id": "a", "path": "x.wav", "start": NaN}\n', "m.jsonl:1: start must be a number"),
        ('{"id": "a", "path": "x.wav", "end": Infinity}\n', "end must be a number"),
        ('{"id": ".", "path": "x.wav"}\n', "m.jsonl:1: invalid id '.'"),
        ('{"id": "../../x", "path": "x.wav"}\n', "invalid id '../../x'"),
        ('{"id": "/abs", "path": "x.wav"}\n', "invalid id '/abs'"),
        ('{"id": "a//b", "path": "x.wav"}\n', "invalid id"),
        ('{"id": "a\\tb", "path": "x.wav"}\n', "invalid id"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, content, message):
    (tmp_path / "m.jsonl").write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.jsonl")


def test_duplicate_ids_are_an_error(good_corpus, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "clip6.wav", "path": str(good_corpus / "clip0.wav")}) + "\n")
    with pytest.raises(ManifestError, match="duplicate id 'clip6.wav'"):
        discover([str(good_corpus), str(manifest)])


def test_missing_input():
    with pytest.raises(ManifestError, match="no such file"):
        discover(["/nonexistent/dir"])


def test_csv_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "m.csv").write_bytes("\ufeffid,path\nu1,x.wav\n".encode("utf-8"))
    assert [it.id for it in read_manifest(tmp_path / "m.csv")] == ["u1"]


def test_non_utf8_manifest_names_file_and_line(tmp_path):
    (tmp_path / "m.csv").write_bytes("id,path,text\nu1,x.wav,ok\nu2,y.wav,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"m.csv:3: not UTF-8 text \(byte 0xe9\)"):
        read_manifest(tmp_path / "m.csv")


def test_symlink_loop_lists_each_file_once(good_corpus, tmp_path):
    import shutil

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    shutil.copy(good_corpus / "clip6.wav", root / "sub" / "a.wav")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    assert [it.id for it in discover([str(root)])] == ["sub/a.wav"]


def test_unreadable_subdirectory_is_an_error(good_corpus, tmp_path, monkeypatch):
    import os
    import shutil

    root = tmp_path / "root"
    (root / "locked").mkdir(parents=True)
    shutil.copy(good_corpus / "clip6.wav", root / "locked" / "a.wav")
    real_scandir = os.scandir

    def scandir(path="."):  # what a chmod 000 directory does to a user who is not root
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ManifestError, match="locked: cannot read the directory"):
        discover([str(root)])
