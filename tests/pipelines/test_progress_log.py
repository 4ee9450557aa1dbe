"""A run without a terminal logs a progress line at least every interval, even while nothing finishes."""

import time

from codeclab.pipelines.progress_log import ProgressLog, format_progress


def test_lines_keep_coming_while_an_item_is_slow():
    lines = []
    with ProgressLog(lines.append, interval=0.05) as progress:
        progress.update(3, 10, 7200.0, 1)
        time.sleep(0.3)  # nothing finishes meanwhile
    assert len(lines) >= 4  # the heartbeat lines and the final one
    assert lines[-1].startswith("tokenize: 3/10 items, 2.00 h audio,") and lines[-1].endswith("1 errors")
    assert "eta " in lines[-1] and "x real time" in lines[-1]


def test_format_progress_eta_and_rate():
    line = format_progress(done=50, total=100, audio_seconds=3600.0, wall_seconds=60.0, errors=0)
    assert line == "tokenize: 50/100 items, 1.00 h audio, 60.0x real time, eta 00:01:00, 0 errors"


def test_nothing_is_logged_before_the_first_update():
    lines = []
    with ProgressLog(lines.append, interval=0.02):
        time.sleep(0.1)  # e.g. the inputs are refused before any item is planned
    assert lines == []
