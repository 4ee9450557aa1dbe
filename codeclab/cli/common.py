"""Helpers shared by CLI commands: one console, error reporting that names the problem."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

# In a pipe or a CI log there is no terminal width to respect: use a wide one so tables stay readable.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


# exit codes (docs/reliability.md): every command keeps to these
EXIT_OK = 0
EXIT_ITEMS_FAILED = 1  # the run finished; some items failed and are listed with a reason
EXIT_INPUT = 2  # a usage or input error (bad option, bad file, missing directory, disk full)
EXIT_INTERNAL = 3  # a bug: an internal error, reported in one line (the traceback under --debug)


def fail(message: str, code: int = EXIT_INPUT) -> None:
    """Print `message` as an error and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def device_or_fail(device: str | None) -> str | None:
    """The --device value when this machine has it; otherwise an input error (exit 2) saying why."""
    from codeclab._checks import check_device

    if device is None:
        return None
    try:
        return check_device(device)
    except ValueError as err:
        fail(str(err))


def format_bitrate(bps: float) -> str:
    return f"{bps / 1000:.2f} kbps" if bps >= 1000 else f"{bps:.0f} bps"


def setup_logging(level: int = 20) -> None:
    """Route codeclab's log messages through rich on stderr (INFO by default)."""
    import logging

    from rich.logging import RichHandler

    logger = logging.getLogger("codeclab")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_path=False, show_time=False))
    logger.setLevel(level)


def codec_from_options(
    text: str, weights: str | None = None, random_init: bool = False, seed: int = 0, n_q: int | None = None
):  # -> tuple[CodecSpec, int | None]
    """A command's `--codec` text (`NAME[@WEIGHTS][:N][,key=value]`, docs/codecs.md#naming-a-codec) with its
    separate flags folded in -> (how to load and record the codec, n_q or None); exits 2 on a bad one."""
    from codeclab.codecs.ref import CodecRef

    try:
        ref = CodecRef.parse(text).with_flags(weights, random_init, seed, n_q)
        return ref.spec(), ref.single_n_q()
    except ValueError as err:
        fail(str(err))
