import json

from typer.testing import CliRunner

from codeclab.cli.app import app

runner = CliRunner()


def test_teacher_train_cache_and_distilled_codec_training(aligned_corpus, tmp_path):
    manifest = str(aligned_corpus / "manifest.jsonl")
    teacher = tmp_path / "teacher"
    result = runner.invoke(
        app,
        ["teacher", "train", "--data", manifest, "--out", str(teacher), "--steps", "20", "--batch-size", "4"],
    )
    assert result.exit_code == 0, result.output
    assert "frame accuracy on the validation split" in result.output
    info = json.loads((teacher / "teacher.json").read_text())
    assert 0 <= info["validation_accuracy"] <= 1 and info["config"]["phones"] == ["a", "i", "s", "sil"]

    shown = runner.invoke(app, ["teacher", "info", str(teacher)])
    assert shown.exit_code == 0 and "frame_rate: 100.0" in shown.output

    cache = tmp_path / "cache"
    cached = runner.invoke(
        app, ["teacher", "cache", "--teacher", str(teacher), "--data", manifest, "--cache", str(cache)]
    )
    assert cached.exit_code == 0, cached.output
    assert len(list(cache.rglob("*.safetensors"))) == 11

    args = [
        "train",
        "--preset",
        "codeclab-tiny",
        "--data",
        manifest,
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--segment-seconds",
        "0.4",
        "--device",
        "cpu",
        "--set",
        "num_workers=0",
        "--set",
        "adversarial=false",
        "--set",
        "validate_every=1000",
        "--set",
        f"teacher_cache={cache}",
        "--semantic",
        str(teacher),
        "--semantic-loss",
        "split",
    ]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    assert "distilling" in trained.output
    saved = json.loads((tmp_path / "run" / "codec" / "config.json").read_text())["config"]
    assert saved["quantizer"]["kind"] == "split" and saved["semantic"]["teacher"] == str(teacher)
    shown = runner.invoke(app, ["info", str(tmp_path / "run" / "codec")])
    assert shown.exit_code == 0 and "split loss" in shown.output and "distilled" in shown.output
    assert len(list(cache.rglob("*.safetensors"))) == 11  # the run read the cache; nothing recomputed

    bad = runner.invoke(app, args[:-4] + ["--semantic", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "cannot load teacher" in bad.output
    bad_loss = runner.invoke(app, args[:-2] + ["--semantic-loss", "kl"])
    assert bad_loss.exit_code == 2 and "semantic loss must be one of" in bad_loss.output

    # the same distillation from a recipe's "semantic" block (what make weights will run), and a bad block
    recipe = tmp_path / "recipe.json"
    recipe.write_text(
        json.dumps(
            {"preset": "codeclab-tiny", "semantic": {"teacher": str(teacher), "loss": "split", "weight": 5}}
        )
    )
    no_flags = [a for a in args[:-4] if a not in ("--preset", "codeclab-tiny")]
    no_flags[no_flags.index(str(tmp_path / "run"))] = str(tmp_path / "run-recipe")
    from_recipe = runner.invoke(app, [*no_flags, "--recipe", str(recipe)])
    assert from_recipe.exit_code == 0, from_recipe.output
    saved = json.loads((tmp_path / "run-recipe" / "codec" / "config.json").read_text())["config"]
    assert saved["semantic"]["teacher"] == str(teacher) and saved["semantic"]["weight"] == 5
    recipe.write_text(
        json.dumps({"preset": "codeclab-tiny", "semantic": {"teacher": str(teacher), "lose": "split"}})
    )
    bad_block = runner.invoke(app, [*no_flags, "--recipe", str(recipe)])
    assert bad_block.exit_code == 2 and "unknown \"semantic\" key 'lose'" in bad_block.output
