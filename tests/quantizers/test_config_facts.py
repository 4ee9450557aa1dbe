"""QuantizerConfig: every quantizer config states its kind, codebooks and codebook size."""

from __future__ import annotations

import pytest

from codeclab.quantizers import (
    FSQConfig,
    QuantizerConfig,
    ResidualFSQConfig,
    RVQConfig,
    SplitConfig,
    VQConfig,
    build_quantizer,
)


@pytest.mark.parametrize(
    ("config", "kind", "codebooks", "size"),
    [
        (VQConfig(dim=8, codebook_size=32), "vq", 1, 32),
        (RVQConfig(dim=8, codebook_size=32, num_quantizers=3), "rvq", 3, 32),
        (SplitConfig(dim=8, codebook_size=32, num_quantizers=3), "split", 3, 32),
        (FSQConfig(dim=8, levels=[8, 5, 5]), "fsq", 1, 200),
        (ResidualFSQConfig(dim=8, levels=[4, 4], num_quantizers=2), "rfsq", 2, 16),
    ],
)
def test_configs_state_their_facts_and_match_the_built_quantizer(config, kind, codebooks, size):
    assert isinstance(config, QuantizerConfig)
    assert (config.kind, config.num_codebooks, config.codebook_size) == (kind, codebooks, size)
    from dataclasses import asdict

    quantizer = build_quantizer(kind, asdict(config))
    assert (quantizer.num_quantizers, quantizer.codebook_size) == (codebooks, size)
