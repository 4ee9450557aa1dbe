"""Helpers shared by CLI commands: one console, error reporting that names the problem."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, overload

import typer
from rich.console import Console
from rich.markup import escape

# In a pipe or a CI log there is no terminal width to respect: use a wide one so tables stay readable.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
# markup off: paths and messages print as they are ("[bracketed]" folders, `codeclab[bench]`); the few
# styled lines pass markup=True and escape what they interpolate (`rich.markup.escape`)
console = Console(width=_WIDTH, markup=False)
err_console = Console(stderr=True, width=_WIDTH, markup=False)


# exit codes (docs/reliability.md): every command keeps to these
EXIT_OK = 0
EXIT_ITEMS_FAILED = 1  # the run finished; some items failed and are listed with a reason
EXIT_INPUT = 2  # a usage or input error (bad option, bad file, missing directory, disk full)
EXIT_INTERNAL = 3  # a bug: an internal error, reported in one line (the traceback under --debug)


if TYPE_CHECKING:
    from codeclab.catalog.ref import CodecRef


def fail(message: str | BaseException, code: int = EXIT_INPUT) -> NoReturn:
    """Print `message` (or an exception's message, in the command line's words where it has them:
    `cli_message`) as an error and exit with `code`."""
    if isinstance(message, BaseException):
        message = getattr(message, "cli_message", None) or str(message)
    err_console.print(f"[bold red]error:[/] {escape(str(message))}", markup=True)
    raise typer.Exit(code)


def numbers_or_fail(text: str | None, option: str, unit: str = "numbers") -> list[float]:
    """'1,2,4' -> [1.0, 2.0, 4.0] (empty parts skipped); None or '' -> []; anything else fails naming
    `option` and what it expects (comma-separated `unit`)."""
    try:
        return [float(part) for part in (text or "").split(",") if part.strip()]
    except ValueError:
        fail(f"{option}: expected comma-separated {unit} such as 1,2,4, got {text!r}")


@overload
def device_or_fail(device: str) -> str: ...


@overload
def device_or_fail(device: None) -> None: ...


def device_or_fail(device: str | None) -> str | None:
    """The --device value when this machine has it; otherwise an input error (exit 2) saying why."""
    from codeclab._checks import check_device

    if device is None:
        return None
    try:
        return check_device(device)
    except ValueError as err:
        fail(err)


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


class _BarReporter:
    """Draws each library task (`codeclab._progress`) as a rich bar with its total on stderr, starting the
    live display with the first task (so commands with bars of their own are not disturbed); where stderr
    is not a terminal (a pipe, a CI log) it writes one line as each task ends instead."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.progress: Any = None  # a rich Progress once the first task starts
        self.started: dict[object, tuple[str, float, int | None, str]] = {}

    def start(self, label: str, total: int | None, unit: str) -> object:
        import time

        if self.live and self.progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=err_console,
            )
            self.progress.start()
        task = self.progress.add_task(label, total=total, unit=unit) if self.progress else object()
        self.started[task] = (label, time.perf_counter(), total, unit)
        return task

    def advance(self, task: object, steps: int) -> None:
        if self.progress is not None:
            self.progress.advance(task, steps)

    def end(self, task: object) -> None:
        import time

        label, began, total, unit = self.started.pop(task)
        if self.progress is None:  # a finished bar stays on screen; a log gets one line
            count = "" if total is None else f"{total} {unit} "
            err_console.print(f"{label}: {count}in {time.perf_counter() - began:.1f} s", highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextmanager
def progress_bars() -> Iterator[None]:
    """Show the progress of the library's long tasks (bench, corpus, export) while the block runs."""
    from codeclab._progress import reporting_to

    reporter = _BarReporter(live=err_console.is_terminal)
    try:
        with reporting_to(reporter):
            yield
    finally:
        reporter.close()


def codec_from_options(
    text: str, weights: str | None = None, random_init: bool = False, seed: int = 0, n_q: int | None = None
) -> tuple[CodecRef, int | None]:
    """A command's `--codec` text (`NAME[@WEIGHTS][:N][,key=value]`, docs/codecs.md#naming-a-codec) with its
    separate flags folded in -> (how to load and record the codec, n_q or None); exits 2 on a bad one."""
    from codeclab.catalog.ref import CodecRef

    try:
        ref = CodecRef.parse(text).with_flags(weights, random_init, seed, n_q)
        return ref.spec(), ref.single_n_q()
    except ValueError as err:
        fail(err)
