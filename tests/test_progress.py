"""Long jobs report their progress with known totals (codeclab._progress), and are silent without a reporter."""

from __future__ import annotations

from codeclab._progress import progress_iter, progress_task, reporting_to


class Recorder:
    def __init__(self) -> None:
        self.tasks: dict[int, list] = {}

    def start(self, label, total, unit):
        self.tasks[len(self.tasks)] = [label, total, unit, 0, False]
        return len(self.tasks) - 1

    def advance(self, task, steps):
        self.tasks[task][3] += steps

    def end(self, task):
        self.tasks[task][4] = True


def test_tasks_reach_their_totals_and_cost_nothing_without_a_reporter():
    with progress_task("quiet", 3) as advance:  # no reporter: a no-op
        advance()
    recorder = Recorder()
    with reporting_to(recorder):
        assert list(progress_iter(range(4), "loop", 4, "files")) == [0, 1, 2, 3]
        with progress_task("manual", 2, "steps") as advance:
            advance(2)
    assert recorder.tasks == {0: ["loop", 4, "files", 4, True], 1: ["manual", 2, "steps", 2, True]}


def test_speed_reports_a_task_with_its_total():
    import codeclab
    from codeclab.eval.speed import measure_speed

    recorder = Recorder()
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    with reporting_to(recorder):
        measure_speed(codec, seconds=0.2, batch=1, reps=2)
    label, total, unit, done, ended = recorder.tasks[0]
    assert label == "speed codeclab-tiny" and total == done == 6 and unit == "runs" and ended


def test_the_command_line_reports_each_task_in_a_log(tmp_path, capsys):
    import pytest

    from codeclab.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "bench",
                "speed",
                "--codec",
                "codeclab-tiny",
                "--random-init",
                "--seconds",
                "0.2",
                "--reps",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code in (0, None)
    assert "speed codeclab-tiny: 4 runs in" in capsys.readouterr().err
