import shutil

import numpy as np
import torch

from codeclab.audio.io import load_audio
from codeclab.teachers.cache import TeacherCache
from codeclab.train.dataset import normalise_loudness


def test_cached_features_equal_freshly_computed_ones(phone_teacher, aligned_corpus, tmp_path):
    _, teacher = phone_teacher
    path = aligned_corpus / "u2.wav"
    cache = TeacherCache(tmp_path / "cache", teacher)
    first = cache.get(path)
    wav = torch.from_numpy(normalise_loudness(load_audio(path, 16000, 1), -20.0))[0]
    fresh = teacher.item_features(wav)
    assert torch.equal(first, fresh)
    assert cache.computed == 1 and len(list(cache.dir.rglob("*.safetensors"))) == 1

    again = TeacherCache(tmp_path / "cache", teacher)  # a new run: read from disk, teacher not run
    assert torch.equal(again.get(path), fresh) and again.computed == 0

    copy = tmp_path / "renamed.wav"  # same bytes, other name: same shard
    shutil.copy(path, copy)
    assert torch.equal(again.get(copy), fresh) and again.computed == 0


def test_edited_audio_misses_the_cache(phone_teacher, aligned_corpus, tmp_path):
    import soundfile as sf

    _, teacher = phone_teacher
    x, sr = sf.read(aligned_corpus / "u3.wav", dtype="float32")
    sf.write(tmp_path / "a.wav", x, sr)
    cache = TeacherCache(tmp_path / "cache", teacher)
    before = cache.get(tmp_path / "a.wav")
    sf.write(tmp_path / "a.wav", np.concatenate([np.flip(x), np.zeros(160, np.float32)]), sr)
    after = cache.get(tmp_path / "a.wav")
    assert cache.computed == 2 and not torch.equal(before, after)


def test_fill_names_unreadable_files_and_goes_on(phone_teacher, aligned_corpus, tmp_path):
    _, teacher = phone_teacher
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF but not really a wave file")
    cache = TeacherCache(tmp_path / "cache", teacher)
    computed, failed = cache.fill([str(aligned_corpus / "u4.wav"), str(bad)])
    assert computed == 1 and [p for p, _ in failed] == [str(bad)] and failed[0][1]


def test_another_loudness_target_uses_another_directory(phone_teacher, tmp_path):
    _, teacher = phone_teacher
    assert TeacherCache(tmp_path, teacher, -20.0).dir != TeacherCache(tmp_path, teacher, -26.0).dir
    assert TeacherCache(tmp_path, teacher, -20.0).dir == TeacherCache(tmp_path, teacher, -20.0).dir
