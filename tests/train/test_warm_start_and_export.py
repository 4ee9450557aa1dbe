"""Warm starts (a fresh run takes the fitting tensors of a trained codec) and the export of a stopped run's
latest checkpoint as RUN/codec."""

import pytest
import torch

import codeclab
from codeclab.catalog.presets import tiny
from codeclab.train.trainer import Trainer, export_checkpoint
from codeclab.train.warm_start import warm_start

from .conftest import quick


def test_export_checkpoint_writes_the_codec_of_the_latest_step(train_corpus, tmp_path):
    cfg = quick(steps=6, adversarial=False, checkpoint_every=2)
    trainer = Trainer(tiny(), cfg, [str(train_corpus)], tmp_path / "run", show_progress=False)
    trainer.run(stop_after=4)  # stopped before its end: no codec yet
    assert not (tmp_path / "run" / "codec").exists()
    written = export_checkpoint(tmp_path / "run", name="codeclab-tiny")
    codec = codeclab.load_codec(str(written))
    for name, value in trainer.codec.state_dict().items():
        assert torch.equal(codec.state_dict()[name], value), name
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_checkpoint(tmp_path / "empty")


def test_warm_start_loads_what_fits_and_skips_what_is_asked(tmp_path):
    from codeclab.codecs.neural import NeuralCodec

    torch.manual_seed(1)
    source = NeuralCodec.from_config(tiny())
    source.save_pretrained(tmp_path / "source")
    torch.manual_seed(2)
    target = NeuralCodec.from_config(tiny())
    loaded, skipped = warm_start(target, tmp_path / "source", skip=["decoder."])
    assert loaded > 0 and skipped and all(name.startswith("decoder.") for name in skipped)
    for name, value in source.encoder.state_dict().items():
        assert torch.equal(target.encoder.state_dict()[name], value), name
    assert not torch.equal(next(iter(target.decoder.parameters())), next(iter(source.decoder.parameters())))
