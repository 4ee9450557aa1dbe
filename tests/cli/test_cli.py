import json

from typer.testing import CliRunner

from codeclab.cli.app import app

runner = CliRunner()


def test_list_json():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["codeclab-16k-speech"]["frame_rate"] == 50.0
    assert rows["codeclab-16k-speech"]["bitrates"][-1] == 4000.0


def test_list_table():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "codeclab-16k-speech" in result.output


def test_info_shows_parameters_and_licence():
    result = runner.invoke(app, ["info", "codeclab-16k-speech"])
    assert result.exit_code == 0, result.output
    for text in ("50 frames/s", "8 x 1024", "parameters", "Apache-2.0", "4.00 kbps"):
        assert text in result.output


def test_list_and_info_show_the_bundled_weights_licence_and_card():
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["list", "--json"]).output)}
    speech = rows["codeclab-16k-speech"]
    assert speech["weights"].startswith("bundled") and "CC-BY-SA-3.0" in speech["weights_licence"]
    assert speech["model_card"] == "docs/models/codeclab-16k-speech.md"
    result = runner.invoke(app, ["info", "codeclab-16k-speech"])
    assert result.exit_code == 0, result.output
    for text in ("sha256", "CC-BY-SA-3.0", "codeclab-16k-speech.md", "preset version"):
        assert text in result.output


def test_info_unknown_codec_fails_cleanly():
    result = runner.invoke(app, ["info", "nope"])
    assert result.exit_code == 2
    assert "unknown codec" in result.output


def test_demo_writes_audio(tmp_path):
    result = runner.invoke(
        app, ["demo", "--out", str(tmp_path), "--codec", "codeclab-tiny", "--seconds", "1", "--clips", "12"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "input.wav").is_file() and (tmp_path / "output.wav").is_file()
    assert "(1, 4, 50)" in result.output
    assert (tmp_path / "input.clab").is_file()
    import codeclab

    assert len(codeclab.TokenStore(tmp_path / "tokens")) == 12


def test_version_flag():
    from codeclab._version import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"codeclab {__version__}"


def test_a_misspelled_codec_gets_a_suggestion():
    result = runner.invoke(app, ["info", "codeclab-16k-speach"])
    assert result.exit_code == 2
    assert "did you mean 'codeclab-16k-speech'" in result.output


def test_every_option_of_every_command_has_help():
    import typer

    root = typer.main.get_command(app)
    ctx = root.context_class(root)
    missing = []

    def walk(command, path):
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])
            return
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and not param.help:
                missing.append(f"codeclab {' '.join(path)} {param.opts[0]}")

    walk(root, [])
    assert not missing, missing


def test_hints_name_flags_not_python_keywords(tmp_path):
    """A codec without weights gets a hint in the command line's words (--weights, --random-init)."""
    (tmp_path / "a.wav").write_bytes(b"")
    result = runner.invoke(
        app, ["tokenize", str(tmp_path), "--out", str(tmp_path / "t"), "--codec", "codeclab-16k-small"]
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "--weights DIR" in text and "--random-init" in text and "random_init=True" not in text


def test_help_shows_switches_without_a_bool_type(capsys):
    import pytest

    from codeclab.cli.app import main

    with pytest.raises(SystemExit):
        main(["tokenize", "--help"])
    out = capsys.readouterr().out
    assert "--random-init" in out and "<bool>" not in out
