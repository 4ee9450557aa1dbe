"""Quantizers: VQ, residual VQ, split RVQ, FSQ and residual FSQ behind one contract (`Quantizer`, `QuantizerOutput`)."""

from codeclab.quantizers.base import Quantizer, QuantizerConfig, QuantizerOutput, codebook_metrics
from codeclab.quantizers.fsq import FSQ, FSQConfig, ResidualFSQ, ResidualFSQConfig
from codeclab.quantizers.registry import QUANTIZERS, build_quantizer, quantizer_config, register_quantizer
from codeclab.quantizers.rvq import ResidualVQ, RVQConfig
from codeclab.quantizers.split import SplitConfig, SplitRVQ
from codeclab.quantizers.vq import VectorQuantizer, VQConfig

__all__ = [
    "Quantizer",
    "QuantizerConfig",
    "QuantizerOutput",
    "codebook_metrics",
    "VectorQuantizer",
    "VQConfig",
    "ResidualVQ",
    "RVQConfig",
    "SplitRVQ",
    "SplitConfig",
    "FSQ",
    "FSQConfig",
    "ResidualFSQ",
    "ResidualFSQConfig",
    "QUANTIZERS",
    "build_quantizer",
    "quantizer_config",
    "register_quantizer",
]
