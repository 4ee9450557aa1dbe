"""The one reader of torchrun's environment."""

from __future__ import annotations

import pytest

from codeclab._launch import LaunchPlace, launch_place


def test_no_launcher_is_rank_0_of_1(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launch_place() == LaunchPlace(0, 1, 0)
    assert not launch_place().launched


def test_torchrun_variables_are_read(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_place() == LaunchPlace(3, 4, 1) and launch_place().launched


@pytest.mark.parametrize("rank, world, message", [("x", "2", "RANK='x'"), ("2", "2", "do not describe")])
def test_malformed_variables_name_the_problem(monkeypatch, rank, world, message):
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(ValueError, match=message):
        launch_place()
