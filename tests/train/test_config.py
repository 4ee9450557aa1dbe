"""`--set key=value`: parsed by the field's type, strictly; unknown keys list the valid ones."""

from __future__ import annotations

import pytest

from codeclab.train.config import TrainConfig


def test_values_take_their_fields_types():
    config = TrainConfig().with_overrides(
        {"betas": "0.9,0.95", "adversarial": "off", "discriminators": "msstft", "steps": "6000", "lr": "5e-4"}
    )
    assert config.betas == (0.9, 0.95) and config.adversarial is False
    assert config.discriminators == ["msstft"] and config.steps == 6000 and config.lr == 5e-4
    assert TrainConfig().with_overrides({"betas": "[0.5, 0.9]"}).betas == (0.5, 0.9)  # recipes send JSON


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("adversarial", "ture", "takes true or false"),
        ("steps", "1.5", "takes an integer"),
        ("lr", "fast", "takes a number"),
        ("betas", "0.9", "takes 2 comma-separated values"),
        ("betas", "0.9,x", "takes a number"),
        ("colour", "red", "unknown training setting 'colour'; known: adv_weight"),
    ],
)
def test_bad_values_are_refused_with_what_the_key_takes(key, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig().with_overrides({key: value})
