"""Training recipes: a JSON file that says what `codeclab train` trains, so a run can be repeated from one
file. {"preset": NAME, "codec": {codec config}, "train": {TrainConfig fields}, "data": [...],
"semantic": {"teacher": DIR, "loss": "split", "weight": 5, "codebooks": 1, "hidden": 0}, "comment": ...}.
Command-line options override it. Every error is a ValueError naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECIPE_KEYS = {"preset", "codec", "train", "data", "semantic", "comment"}
SEMANTIC_KEYS: dict[str, type | tuple[type, ...]] = {
    "teacher": str,
    "loss": str,
    "weight": (int, float),
    "codebooks": int,
    "hidden": int,
}


@dataclass(frozen=True)
class SemanticChoice:
    """A teacher to distil into the leading codebooks (what `--semantic` and its options say)."""

    teacher: str
    loss: str = "split"
    weight: float = 1.0
    codebooks: int = 1
    hidden: int = 0


@dataclass
class Recipe:
    """A read recipe; `data` paths are relative to the recipe's folder where they exist there."""

    preset: str | None = None
    codec: dict[str, Any] | None = None
    train: dict[str, Any] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    semantic: SemanticChoice | None = None


def read_recipe(path: str | Path) -> Recipe:
    """The recipe in `path`; unknown keys and wrong types are ValueErrors naming the file."""
    path = Path(path)
    try:
        plan = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the recipe: {err}") from None
    if not isinstance(plan, dict):
        raise ValueError(f"{path}: a recipe is a JSON object")
    unknown = set(plan) - RECIPE_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown recipe keys {sorted(unknown)}")
    train, codec, data = plan.get("train", {}), plan.get("codec"), plan.get("data", [])
    if not isinstance(train, dict) or (codec is not None and not isinstance(codec, dict)):
        raise ValueError(f'{path}: "train" and "codec" must be JSON objects')
    if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
        raise ValueError(f'{path}: "data" must be a list of paths')
    data = [
        str((path.parent / d) if not Path(d).is_absolute() and (path.parent / d).exists() else d)
        for d in data
    ]
    semantic = parse_semantic(plan["semantic"], path) if plan.get("semantic") else None
    return Recipe(plan.get("preset"), codec or None, train, data, semantic)


def parse_semantic(block: object, where: str | Path) -> SemanticChoice:
    """A recipe's "semantic" block (the teacher path is relative to the directory you run from, as data
    paths given on the command line are)."""
    if not isinstance(block, dict) or not isinstance(block.get("teacher"), str):
        raise ValueError(f'{where}: "semantic" must be an object with a "teacher" directory')
    for key, value in block.items():
        kind = SEMANTIC_KEYS.get(key)
        if kind is None:
            raise ValueError(f'{where}: unknown "semantic" key {key!r}; known: {", ".join(SEMANTIC_KEYS)}')
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f'{where}: "semantic" {key} has the wrong type ({value!r})')
    return SemanticChoice(
        block["teacher"],
        block.get("loss", "split"),
        float(block.get("weight", 1.0)),
        int(block.get("codebooks", 1)),
        int(block.get("hidden", 0)),
    )


def train_overrides(
    recipe_train: dict[str, Any], settings: list[str] | None, **options: object
) -> dict[str, str]:
    """TrainConfig overrides as text: the recipe's "train", then each `key=value` setting, then the named
    options that were given (the command line wins)."""
    overrides = {key: setting_text(value) for key, value in recipe_train.items()}
    for item in settings or []:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    overrides.update({key: str(value) for key, value in options.items() if value is not None})
    return overrides


def setting_text(value: object) -> str:
    """A recipe's JSON value as the key=value text `TrainConfig.with_overrides` parses."""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def codec_config_to_train(
    preset_config: Any, recipe_codec: dict[str, Any] | None, semantic: SemanticChoice | None
):
    """The architecture to train (a `CodecConfig`): the preset's, or the recipe's "codec", with a semantic
    head when a teacher is given (its dimension read from the teacher). Returns (config, teacher or None)."""
    from codeclab.codecs.config import CodecConfig
    from codeclab.codecs.semantic import SemanticConfig

    config = CodecConfig.from_dict(recipe_codec) if recipe_codec else preset_config
    if semantic is None:
        return config, None
    from codeclab.teachers import load_teacher

    teacher = load_teacher(semantic.teacher)
    head = SemanticConfig(
        teacher=semantic.teacher,
        teacher_dim=teacher.dim,
        codebooks=semantic.codebooks,
        loss=semantic.loss,
        weight=semantic.weight,
        hidden=semantic.hidden,
    )
    return config.with_semantic(head), teacher
