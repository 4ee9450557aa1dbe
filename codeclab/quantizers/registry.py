"""Quantizers by name: a config dataclass and a class per kind, so codec configs can name them in JSON."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from codeclab.quantizers.base import Quantizer
from codeclab.quantizers.fsq import FSQ, FSQConfig, ResidualFSQ, ResidualFSQConfig
from codeclab.quantizers.rvq import ResidualVQ, RVQConfig
from codeclab.quantizers.split import SplitConfig, SplitRVQ
from codeclab.quantizers.vq import VectorQuantizer, VQConfig

QUANTIZERS: dict[str, tuple[type, type[Quantizer]]] = {}


def register_quantizer(kind: str, config_cls: type, quantizer_cls: type[Quantizer]) -> None:
    """Name a quantizer kind; its config class says the same name in its `kind` class attribute."""
    if kind in QUANTIZERS:
        raise ValueError(f"quantizer kind {kind!r} is already registered")
    if getattr(config_cls, "kind", "") != kind:
        raise ValueError(
            f"{config_cls.__name__}.kind is {getattr(config_cls, 'kind', '')!r}; a config registered as "
            f"{kind!r} declares `kind: ClassVar[str] = {kind!r}`"
        )
    QUANTIZERS[kind] = (config_cls, quantizer_cls)


register_quantizer("vq", VQConfig, VectorQuantizer)
register_quantizer("rvq", RVQConfig, ResidualVQ)
register_quantizer("fsq", FSQConfig, FSQ)
register_quantizer("rfsq", ResidualFSQConfig, ResidualFSQ)
register_quantizer("split", SplitConfig, SplitRVQ)


# settings that configs written by earlier versions may hold and that no longer exist, with why dropping
# them loads those weights exactly as they ran (every one of them acts in training only)
RETIRED_SETTINGS: dict[str, str] = {
    "dead_code_threshold": "codeclab 0.1.0's absolute dead-code count, replaced by dead_code_ratio and "
    "dead_code_rows; it acted only on training steps",
}


def quantizer_config(kind: str, params: dict[str, Any]):
    """Typed config for `kind` from a plain dict (as stored in config.json); unknown keys are an error,
    retired ones (`RETIRED_SETTINGS`) are dropped."""
    if kind not in QUANTIZERS:
        raise ValueError(f"unknown quantizer kind {kind!r}; known: {', '.join(sorted(QUANTIZERS))}")
    params = {key: value for key, value in params.items() if key not in RETIRED_SETTINGS}
    config_cls, _ = QUANTIZERS[kind]
    known = {f.name for f in fields(config_cls)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown {kind} quantizer settings: {', '.join(sorted(unknown))}")
    return config_cls(**params)


def build_quantizer(kind: str, params: dict[str, Any]) -> Quantizer:
    config = quantizer_config(kind, params)  # an unknown kind is refused here
    _, quantizer_cls = QUANTIZERS[kind]
    return quantizer_cls(config)


def config_params(config) -> dict[str, Any]:
    return asdict(config)
