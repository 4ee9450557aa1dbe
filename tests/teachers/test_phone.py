import json

import pytest
import torch

from codeclab.teachers import load_teacher
from codeclab.teachers.phone import PhoneTeacher, train_phone_teacher


def test_the_teacher_learns_the_alignment(phone_teacher):
    _, teacher = phone_teacher
    info = teacher.info
    assert teacher.dim == 4 and teacher.frame_rate == 100.0
    assert info["validation_accuracy"] > 0.8, info  # tones, noise and silence are easy
    assert info["validation_accuracy"] > info["majority_baseline"] + 0.3


def test_features_are_posteriors_and_batched_equals_single(phone_teacher, aligned_corpus):
    import soundfile as sf

    _, teacher = phone_teacher
    a, _ = sf.read(aligned_corpus / "u0.wav", dtype="float32")
    b, _ = sf.read(aligned_corpus / "u1.wav", dtype="float32")
    n = min(len(a), len(b))
    wav = torch.zeros(2, 1, n)
    wav[0, 0], wav[1, 0, : n // 2] = torch.from_numpy(a[:n]), torch.from_numpy(b[: n // 2])
    feats = teacher.features(wav, torch.tensor([n, n // 2]))
    assert feats.shape == (2, -(-n // 160), 4)
    torch.testing.assert_close(feats[0].sum(-1), torch.ones(feats.shape[1]))
    single = teacher.item_features(torch.from_numpy(b[: n // 2]))
    torch.testing.assert_close(feats[1, : single.shape[0]], single)
    assert bool((feats[1, single.shape[0] :] == 0).all())


def test_save_load_round_trip_and_corruption_is_caught(phone_teacher, tmp_path):
    out, teacher = phone_teacher
    loaded = load_teacher(str(out))
    assert isinstance(loaded, PhoneTeacher) and loaded.fingerprint() == teacher.fingerprint()
    wav = 0.1 * torch.randn(4000)
    torch.testing.assert_close(loaded.item_features(wav), teacher.item_features(wav))
    with pytest.raises(ValueError, match="no layers"):
        load_teacher(f"{out}:3")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "teacher.json").write_text((out / "teacher.json").read_text())
    weights = bytearray((out / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="model.safetensors: sha256 mismatch"):
        load_teacher(str(bad))
    # the weights file teacher.json names stays inside the teacher's directory (the codecs' rule)
    meta = json.loads((out / "teacher.json").read_text())
    (bad / "teacher.json").write_text(json.dumps({**meta, "weights_file": "../elsewhere.safetensors"}))
    with pytest.raises(ValueError, match="weights_file must be a file name inside"):
        load_teacher(str(bad))


def test_a_manifest_without_alignments_is_a_clear_error(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "x", "path": "x.wav"}) + "\n")
    with pytest.raises(ValueError, match="phone-aligned items"):
        train_phone_teacher(tmp_path / "m.jsonl", tmp_path / "t", steps=1)
    with pytest.raises(ValueError, match="neither a phone teacher"):
        load_teacher(str(tmp_path))
