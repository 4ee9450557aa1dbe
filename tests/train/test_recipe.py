"""Training recipes (train/recipe.py): what `codeclab train --recipe` reads, and its refusals."""

from __future__ import annotations

import json

import pytest

from codeclab.train.recipe import SemanticChoice, read_recipe, setting_text, train_overrides


def test_a_recipe_reads_with_data_relative_to_its_folder(tmp_path):
    (tmp_path / "corpus").mkdir()
    recipe = tmp_path / "r.json"
    recipe.write_text(
        json.dumps(
            {
                "preset": "codeclab-tiny",
                "train": {"steps": 5, "adversarial": False, "betas": [0.8, 0.9]},
                "data": ["corpus", "/elsewhere/manifest.jsonl"],
                "semantic": {"teacher": "phones", "weight": 5},
            }
        )
    )
    read = read_recipe(recipe)
    assert read.preset == "codeclab-tiny"
    assert read.data == [str(tmp_path / "corpus"), "/elsewhere/manifest.jsonl"]
    assert read.semantic == SemanticChoice("phones", "split", 5.0, 1, 0)
    overrides = train_overrides(read.train, ["steps=7", "lr=0.001"], batch_size=4, steps=None)
    assert overrides == {
        "steps": "7",
        "adversarial": "false",
        "betas": "[0.8, 0.9]",
        "lr": "0.001",
        "batch_size": "4",
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "a recipe is a JSON object"),
        ('{"presets": "x"}', "unknown recipe keys"),
        ('{"data": "corpus"}', "must be a list of paths"),
        ('{"semantic": {"teacher": "t", "weight": true}}', "weight has the wrong type"),
        ('{"semantic": {"teacher": "t", "colour": 1}}', 'unknown "semantic" key'),
        ("{not json", "cannot read the recipe"),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_file(tmp_path, content, message):
    recipe = tmp_path / "bad.json"
    recipe.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_recipe(recipe)
    assert str(recipe) in str(err.value)


def test_a_setting_without_equals_is_refused_and_values_print_as_the_config_parses_them():
    with pytest.raises(ValueError, match="key=value"):
        train_overrides({}, ["steps"])
    assert (setting_text(True), setting_text((1, 2)), setting_text(0.5)) == ("true", "[1, 2]", "0.5")
