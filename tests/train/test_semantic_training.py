"""Codec training with semantic distillation, on the tone corpus and phone teacher of tests/teachers."""

import json

import pytest
import torch

from codeclab.codecs.semantic import SemanticConfig
from codeclab.train.trainer import Trainer

from .conftest import quick, small_codec


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("loss", ["cosine", "split"])
def test_distillation_trains_logs_its_loss_and_caches_the_teacher(
    loss, aligned_corpus, phone_teacher, tmp_path
):
    teacher_dir, teacher = phone_teacher
    config = small_codec().with_semantic(SemanticConfig(str(teacher_dir), teacher.dim, loss=loss))
    cfg = quick(steps=3, adversarial=False, teacher_cache=str(tmp_path / "cache"))
    trainer = Trainer(
        config, cfg, [str(aligned_corpus / "manifest.jsonl")], tmp_path / "run", show_progress=False
    )
    trainer.run()
    train = [r for r in rows(tmp_path / "run") if r["split"] == "train"]
    assert len(train) == 3 and all(torch.isfinite(torch.tensor(r["loss/semantic"])) for r in train)
    shards = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(shards) == 8  # every training file once
    saved = json.loads((tmp_path / "run" / "codec" / "config.json").read_text())
    assert saved["config"]["semantic"]["loss"] == loss
    assert saved["config"]["quantizer"]["kind"] == ("split" if loss == "split" else "rvq")


def test_targets_are_the_teacher_at_the_crop_frame_times(aligned_corpus, phone_teacher, tmp_path):
    from codeclab.teachers import features_at

    teacher_dir, teacher = phone_teacher
    config = small_codec().with_semantic(SemanticConfig(str(teacher_dir), teacher.dim))
    cfg = quick(steps=1, adversarial=False, teacher_cache=str(tmp_path / "cache"))
    trainer = Trainer(
        config, cfg, [str(aligned_corpus / "manifest.jsonl")], tmp_path / "run", show_progress=False
    )
    trainer.run()
    clip = trainer.train_set.clips[2]
    whole = trainer.teacher_cache.get(clip.item.path)
    target = trainer.semantic_targets(torch.tensor([2]), torch.tensor([0.3], dtype=torch.float64), 10)[0]
    times = 0.3 + (torch.arange(10, dtype=torch.float64) + 0.5) / 50  # 50 Hz codec frames, 100 Hz teacher
    torch.testing.assert_close(target, features_at(whole, 100.0, times))
    # at 100 Hz, a 50 Hz frame centre falls between two teacher frames: the target is their average
    i = int(0.3 * 100)
    torch.testing.assert_close(target[0], (whole[i] + whole[i + 1]) / 2)


def test_a_teacher_of_the_wrong_size_is_refused(aligned_corpus, phone_teacher, tmp_path):
    teacher_dir, teacher = phone_teacher
    config = small_codec().with_semantic(SemanticConfig(str(teacher_dir), teacher.dim + 1))
    trainer = Trainer(config, quick(steps=1), [str(aligned_corpus)], tmp_path / "run", show_progress=False)
    with pytest.raises(ValueError, match="expects 5"):
        trainer.run()
