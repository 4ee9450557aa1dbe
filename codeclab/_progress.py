"""Progress of long jobs, reported without tying the library to a terminal.

Library code marks its long loops:

    with progress_task("recon codeclab-16k-speech:4", total=len(items), unit="items") as advance:
        for item in items:
            ...
            advance()          # or advance(n)

and does nothing more: with no reporter installed (the default, and in tests) a task costs nothing. The
command line installs one (`codeclab.cli.common.progress_bars`) that draws a bar per task with its known
total. The reporter lives in a context variable, so threads and nested jobs each see their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Reporter(Protocol):
    """What a front end implements to show tasks: start one, advance it, end it."""

    def start(self, label: str, total: int | None, unit: str) -> object: ...

    def advance(self, task: object, steps: int) -> None: ...

    def end(self, task: object) -> None: ...


_reporter: ContextVar[Reporter | None] = ContextVar("codeclab_progress_reporter", default=None)


@contextmanager
def progress_task(label: str, total: int | None, unit: str = "items") -> Iterator[Callable[..., None]]:
    """A task of `total` steps (None when unknown); yields `advance(steps=1)`."""
    reporter = _reporter.get()
    if reporter is None:

        def ignore(steps: int = 1) -> None:
            return None

        yield ignore
        return
    task = reporter.start(label, total, unit)

    def advance(steps: int = 1) -> None:
        reporter.advance(task, steps)

    try:
        yield advance
    finally:
        reporter.end(task)


def progress_iter(items: Iterable, label: str, total: int | None, unit: str = "items") -> Iterator:
    """`items`, advancing a task by one as each is taken (for plain loops)."""
    with progress_task(label, total, unit) as advance:
        for item in items:
            yield item
            advance()


@contextmanager
def reporting_to(reporter: Reporter | None) -> Iterator[None]:
    """Install `reporter` for the tasks started inside the block."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
