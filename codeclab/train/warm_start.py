"""Warm start: a fresh run takes the tensors of a trained codec that fit its own architecture."""

from __future__ import annotations

from pathlib import Path

from torch import nn


def warm_start(
    codec: nn.Module, directory: str | Path, skip: list[str] | tuple[str, ...] = ()
) -> tuple[int, list[str]]:
    """Copy into `codec` every tensor of the codec saved in `directory` (save_pretrained; its sha256 is
    checked) that has the same name and shape and no name prefix in `skip`; the rest keep their initial values. Returns (tensors
    loaded, names left as initialised). Raises ValueError when nothing fits (the wrong directory)."""
    from codeclab.codecs.neural import NeuralCodec

    source = NeuralCodec.from_pretrained(directory).state_dict()
    own = codec.state_dict()
    fitting = {
        k: v
        for k, v in source.items()
        if k in own and own[k].shape == v.shape and not any(k.startswith(p) for p in skip)
    }
    if not fitting:
        raise ValueError(
            f"{directory}: no tensor of that codec fits this architecture (nothing to warm-start)"
        )
    codec.load_state_dict({k: v.to(own[k].dtype) for k, v in fitting.items()}, strict=False)
    return len(fitting), sorted(k for k in own if k not in fitting)
