"""The documented exit codes (docs/reliability.md): 2 for usage and input errors, 3 for internal errors, each
reported in one line; --debug adds the traceback."""

from __future__ import annotations

import pytest

from codeclab.cli.app import main


def run(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as caught:
        main(args)
    return caught.value.code, capsys.readouterr().err


def _raise(error: Exception):
    def broken(*args, **kwargs):
        raise error

    return broken


def test_internal_error_is_one_line_with_exit_3(monkeypatch, capsys):
    import codeclab.catalog.registry as registry

    monkeypatch.setattr(registry, "entries", _raise(RuntimeError("something broke")))
    code, err = run(["list"], capsys)
    assert code == 3
    assert "internal error: RuntimeError: something broke" in err
    assert "Traceback" not in err and "--debug" in err


def test_debug_adds_the_traceback(monkeypatch, capsys):
    import codeclab.catalog.registry as registry

    monkeypatch.setattr(registry, "entries", _raise(RuntimeError("something broke")))
    code, err = run(["list", "--debug"], capsys)
    assert code == 3
    assert "Traceback" in err and "something broke" in err


def test_environment_errors_exit_2(monkeypatch, capsys):
    import codeclab.catalog.registry as registry

    monkeypatch.setattr(registry, "entries", _raise(OSError(28, "No space left on device", "/out/part")))
    code, err = run(["list"], capsys)
    assert code == 2
    assert "No space left on device: '/out/part'" in err


def test_usage_errors_exit_2(capsys):
    code, _ = run(["encode", "--no-such-option"], capsys)
    assert code == 2
    code, err = run(["decode", "/nonexistent.clab", "/tmp/out.wav"], capsys)
    assert code == 2 and "nonexistent.clab" in err


def test_clean_run_exits_0(capsys):
    code, _ = run(["list"], capsys)
    assert code == 0


def test_an_unavailable_device_is_an_input_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, err = run(["tokenize", str(tmp_path), "--out", str(tmp_path / "s"), "--device", "cuda"], capsys)
    assert code == 2 and "no CUDA GPU is available" in err
    code, err = run(["tokenize", str(tmp_path), "--out", str(tmp_path / "s"), "--device", "tpu"], capsys)
    assert code == 2 and "unknown device 'tpu'" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["tokenize", "corpus", "--out", "s", "--random-init", "true"],
        ["bench", "speed", "--codec", "codeclab-tiny", "--random-init", "yes"],
    ],
)
def test_a_boolean_word_after_a_switch_is_a_usage_error(argv, capsys):
    """`--random-init true` would make `true` the next argument (an input path): exit 2 with a message."""
    from codeclab.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "--random-init is a switch" in capsys.readouterr().err
