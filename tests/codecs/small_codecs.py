"""Small codecs built in milliseconds for tests that need an architecture, not a preset's weights."""

from __future__ import annotations

import torch

from codeclab.codecs.modules.seanet import SEANetConfig
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.quantizers import RVQConfig


def small_codec(causal: bool, name: str = "small-centred") -> NeuralCodec:
    """A 16 kHz SEANet codec (hop 320, RVQ 4 x 64), causal or centred, seeded random weights."""
    ratios = [2, 4, 5, 8]
    config = CodecConfig(
        16000,
        SEANetConfig(dimension=16, n_filters=4, ratios=ratios, causal=causal),
        SEANetConfig(dimension=16, n_filters=4, ratios=ratios, causal=causal, n_residual_layers=2),
        RVQConfig(dim=16, codebook_size=64, num_quantizers=4),
    )
    torch.manual_seed(0)
    return NeuralCodec.from_config(config, name=name).eval()
