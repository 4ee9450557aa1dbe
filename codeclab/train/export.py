"""A run's codec, RUN/codec: written at the end of a run, or from its latest checkpoint for a run stopped
before its last step."""

from __future__ import annotations

import json
from pathlib import Path

from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.train.checkpoint import latest_checkpoint, load_checkpoint


def export_checkpoint(run_dir: str | Path, name: str = "codeclab-custom") -> Path:
    """Write RUN/codec (as the end of a run writes it) from the run's latest checkpoint: for a run stopped
    before its last step (killed, `--stop-after`) whose weights are wanted as they are. Returns RUN/codec."""
    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to export (checkpoints/latest.json)")
    try:
        record = json.loads((run_dir / "config.json").read_text())
        config = CodecConfig.from_dict(record["codec"])
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{run_dir / 'config.json'}: cannot read the run's codec config ({err})") from None
    step, state = load_checkpoint(checkpoint)
    codec = NeuralCodec.from_config(config, name=name)
    codec.load_state_dict(state["codec"])
    codec.eval()
    return write_run_codec(codec, run_dir, name, step + 1)


def write_run_codec(codec: NeuralCodec, run_dir: Path, name: str, trained_steps: int) -> Path:
    """RUN/codec: `codec` saved with its trained steps and the preset (and preset version) it was made
    as, so `load_codec(RUN/codec)` and `codeclab codecs bundle` know what it is. Returns RUN/codec."""
    from codeclab.catalog.presets import preset_version

    extra = {"trained_steps": trained_steps, "preset": name, "preset_version": preset_version(name)}
    return codec.save_pretrained(run_dir / "codec", extra=extra)
