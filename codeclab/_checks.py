"""Checks that config dataclasses run in `__post_init__`, before any module or tensor is built.

Configs arrive from JSON files a user may not have written (a downloaded weights folder, a `.clab`
header): `check_types` refuses values of the wrong type (a string where an int belongs, a bool for an
int, a float for an int) and `check_bounds` refuses sizes that would allocate absurd memory
(`codebook_size: 10**9`), each with a message naming the config class, the field and the value.
"""

from __future__ import annotations

import numbers
import types
import typing
from dataclasses import fields
from functools import cache
from typing import Any, Union

# words a setting's text may use for a boolean (`--set adversarial=off`, a stray `--resume yes`)
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if not args:
            return True
        item = args[0]
        return all(_matches(v, item) for v in value)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not know: leave it to the config's own checks


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) is not None or isinstance(hint, types.UnionType):
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))


def check_types(config: Any) -> None:
    """Raise ValueError naming `Class.field` when a field's value does not match its annotation."""
    hints = _hints(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        hint = hints.get(f.name, Any)
        if not _matches(value, hint):
            name = _hint_name(hint)
            raise ValueError(
                f"{type(config).__name__}.{f.name} must be {name}, got {value!r} ({type(value).__name__})"
            )


def check_bounds(config: Any, bounds: dict[str, tuple[float, float]]) -> None:
    """Raise ValueError when a field (or each item of a list field) lies outside [low, high]."""
    for name, (low, high) in bounds.items():
        value = getattr(config, name)
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not low <= item <= high:
                raise ValueError(
                    f"{type(config).__name__}.{name} must lie in [{low:g}, {high:g}], got {item!r}"
                )


def check_product(config: Any, names: tuple[str, ...], limit: float, what: str) -> None:
    """Raise ValueError when the product of the fields `names` exceeds `limit` (a memory bound)."""
    product = 1
    for name in names:
        product *= getattr(config, name)
    if product > limit:
        raise ValueError(
            f"{type(config).__name__}: {' x '.join(names)} = {product:,} {what} is above the limit "
            f"of {limit:,.0f}"
        )


def check_n_q(n_q: Any, available: int) -> int:
    """Resolve a number of codebooks: None means all `available`; any integer type (numpy's, and 0-dim
    integer tensors, too) from 1 to `available` is accepted as a plain int; anything else (bools, floats, out of range) raises ValueError."""
    if n_q is None:
        return available
    if type(n_q).__module__ == "torch" and getattr(n_q, "ndim", None) == 0 and not n_q.is_floating_point():
        n_q = n_q.item()  # a 0-dim integer tensor, as `codes.shape[1]`-derived code often hands over
    if isinstance(n_q, bool) or not isinstance(n_q, numbers.Integral) or not 1 <= int(n_q) <= available:
        raise ValueError(f"n_q must be an integer from 1 to {available}, got {n_q!r}")
    return int(n_q)


def codes_out_of_range(codes: Any, codebook_size: int) -> tuple[int, int] | None:
    """(lowest, highest) code when some code of `codes` (a numpy array or torch tensor of any shape) lies
    outside [0, codebook_size); None when every code lies inside, or there are none. The one range
    check of codes: every reader, writer and model of codes asks it."""
    size = codes.numel() if hasattr(codes, "numel") else codes.size
    if not size:
        return None
    low, high = int(codes.min()), int(codes.max())
    return None if low >= 0 and high < codebook_size else (low, high)


def check_codes(
    codes: Any,
    codebook_size: int,
    n_q: int | None = None,
    max_n_q: int | None = None,
    error: type[ValueError] = ValueError,
):
    """`codes` as a numpy array [n_q, frames] whose codes lie in [0, codebook_size); with `n_q`, exactly
    that many rows; with `max_n_q`, 1 to that many. Anything else raises `error`, naming the shape or
    range expected."""
    import numpy as np

    codes = np.asarray(codes)
    if n_q is not None:
        rows_ok, expected = codes.ndim == 2 and codes.shape[0] == n_q, f"[{n_q}, frames]"
    elif max_n_q is not None:
        rows_ok, expected = codes.ndim == 2 and 1 <= codes.shape[0] <= max_n_q, f"[n_q <= {max_n_q}, frames]"
    else:
        rows_ok, expected = codes.ndim == 2, "[n_q, frames]"
    if not rows_ok:
        raise error(f"codes must have shape {expected}, got {codes.shape}")
    outside = codes_out_of_range(codes, codebook_size)
    if outside is not None:
        raise error(f"codes must lie in [0, {codebook_size}), got values from {outside[0]} to {outside[1]}")
    return codes


def check_device(device: str) -> str:
    """`device` when this machine has it ("cpu", "cuda", "cuda:N", "mps"); else ValueError saying what is
    missing (instead of a torch error deep inside the first encode)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r} ({err}); use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is available on this machine; use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r}: MPS is not available on this machine; use --device cpu")
    elif parsed.type != "cpu":
        raise ValueError(f"device {device!r}: codeclab runs on cpu, cuda or mps")
    return device
