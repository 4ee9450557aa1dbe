"""Progress as log lines, for runs without a terminal (batch jobs, Slurm, Ray drivers): a line at least
every `interval` seconds, whatever the pipeline is doing, with items done, hours of audio, x real time,
the ETA and the errors so far."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def format_progress(
    done: int, total: int | None, audio_seconds: float, wall_seconds: float, errors: int
) -> str:
    """One line: "tokenize: 1,234/10,000 items, 3.21 h audio, 412.0x real time, eta 0:12:33, 5 errors"."""
    xrt = audio_seconds / wall_seconds if wall_seconds > 0 else 0.0
    eta = "?"
    if total and done and wall_seconds > 0:
        left = (total - done) * wall_seconds / done
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left < 86400 else f"{left / 3600:.0f} h"
    of = f"/{total:,}" if total is not None else ""
    return (
        f"tokenize: {done:,}{of} items, {audio_seconds / 3600:.2f} h audio, {xrt:.1f}x real time, "
        f"eta {eta}, {errors:,} errors"
    )


class ProgressLog:
    """Call `update(done, total, audio_seconds, errors)` as work finishes; a daemon thread emits the
    latest state every `interval` seconds (and `close()` emits the final one)."""

    def __init__(self, emit: Callable[[str], None], interval: float = 30.0) -> None:
        self.emit, self.interval = emit, interval
        self.begin = time.monotonic()
        self.state: tuple[int, int | None, float, int] = (0, None, 0.0, 0)
        self.updated = False  # nothing to say before the first update (a usage error prints no progress)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="codeclab-progress", daemon=True)
        self._thread.start()

    def update(self, done: int, total: int | None, audio_seconds: float, errors: int) -> None:
        with self._lock:
            self.state = (done, total, audio_seconds, errors)
            self.updated = True

    def line(self) -> str:
        with self._lock:
            done, total, audio, errors = self.state
        return format_progress(done, total, audio, time.monotonic() - self.begin, errors)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.updated:
                self.emit(self.line())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)
        if self.updated:
            self.emit(self.line())

    def __enter__(self) -> ProgressLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
