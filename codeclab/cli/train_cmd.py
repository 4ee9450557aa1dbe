"""`codeclab train`: train a codec preset on a corpus (one process, or many under torchrun)."""

from __future__ import annotations

from pathlib import Path

import typer

from codeclab.cli.common import console, device_or_fail, fail, setup_logging


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    preset: str = typer.Option(
        "codeclab-16k-speech", "--preset", help="codeclab preset whose architecture to train."
    ),
    recipe: Path = typer.Option(
        None,
        "--recipe",
        help='JSON recipe: {"preset": NAME, "codec": {codec config}, "train": {TrainConfig fields}, '
        '"data": [...]}; command-line options override it.',
    ),
    data: list[str] = typer.Option(
        None,
        "--data",
        help="Directory, glob or manifest (repeatable); a `split` column marks validation items.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory (config, metrics.jsonl, checkpoints, samples, codec/)."
    ),
    steps: int = typer.Option(
        None, "--steps", help="Total training steps (default: the recipe's, else TrainConfig's 100,000)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the run directory's latest checkpoint."
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Crops per step (default: the recipe's, else 16)."
    ),
    segment_seconds: float = typer.Option(
        None, "--segment-seconds", help="Length of the training crops (default: the recipe's, else 1.0)."
    ),
    device: str = typer.Option(
        None, "--device", help="cpu, cuda or cuda:N (default: cuda when present; torchrun: cuda:LOCAL_RANK)."
    ),
    stop_after: int = typer.Option(
        None, "--stop-after", help="Stop (with a checkpoint) after this many steps of this run."
    ),
    settings: list[str] = typer.Option(
        None, "--set", help="Any TrainConfig field as key=value (repeatable), e.g. --set adversarial=false."
    ),
    semantic: str = typer.Option(
        None,
        "--semantic",
        help="Distil a teacher into codebook 1: a phone-teacher directory (codeclab teacher train) or a "
        "transformers HuBERT/WavLM/wav2vec2/w2v-BERT directory or hub id, optionally :LAYER (int or avg).",
    ),
    semantic_loss: str = typer.Option(
        "cosine",
        "--semantic-loss",
        help="cosine (SpeechTokenizer D-axis), tsim (T-axis), mse (X-Codec), split (Mimi).",
    ),
    semantic_weight: float = typer.Option(1.0, "--semantic-weight", help="Weight of the distillation loss."),
    semantic_codebooks: int = typer.Option(
        1, "--semantic-codebooks", help="How many leading codebooks the semantic head reads."
    ),
    semantic_hidden: int = typer.Option(
        0, "--semantic-hidden", help="0: linear head; N: a conv layer of N channels before the projection."
    ),
    export_checkpoint: bool = typer.Option(
        False,
        "--export-checkpoint",
        help="Train nothing: write OUT/codec from OUT's latest checkpoint (a run stopped before its end).",
    ),
) -> None:
    """Train a codec; under torchrun every rank trains on its own batches with DistributedDataParallel."""
    from codeclab.catalog.registry import get_entry
    from codeclab.train.config import TrainConfig
    from codeclab.train.trainer import Trainer

    setup_logging()
    device = device_or_fail(device)
    plan, preset, data = _read_recipe(recipe, preset, data)
    if export_checkpoint:
        from codeclab.train.trainer import export_checkpoint as export

        try:
            written = export(out, name=preset)
        except (ValueError, FileNotFoundError) as err:
            fail(err)
        console.print(f"codec saved to {written} (codeclab.load_codec('{written}'))")
        return
    if not data:
        fail('no training data: pass --data (or a recipe with "data")')
    try:
        entry = get_entry(preset)
    except ValueError as err:
        fail(err)
    if entry.family != "codeclab":
        fail(
            f"{preset} is a peer codec; train a codeclab preset (codeclab-16k-speech, codeclab-24k-audio, ...)"
        )
    overrides = _train_overrides(
        plan, settings, steps=steps, batch_size=batch_size, segment_seconds=segment_seconds
    )
    try:
        config = TrainConfig().with_overrides(overrides)
        if semantic is None and plan.get("semantic"):
            semantic, semantic_loss, semantic_weight, semantic_codebooks, semantic_hidden = _recipe_semantic(
                plan["semantic"], recipe
            )
        codec_config = _codec_config(
            entry, plan, semantic, semantic_loss, semantic_weight, semantic_codebooks, semantic_hidden
        )
        trainer = Trainer(codec_config, config, data, out, device=device, resume=resume, name=preset)
        last = trainer.run(stop_after=stop_after)
    except (ValueError, FileNotFoundError, ImportError) as err:
        fail(err)
    if trainer.is_main:
        summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
        console.print(f"{out}: step {last.get('step')}; {summary}")
        if (out / "codec").is_dir():
            console.print(f"codec saved to {out / 'codec'} (codeclab.load_codec('{out / 'codec'}'))")


def _read_recipe(recipe: Path | None, preset: str, data: list[str] | None) -> tuple[dict, str, list[str]]:
    """The recipe's plan, and the preset and data it gives where the command line gave none (data paths
    relative to the recipe's folder when they exist there)."""
    if recipe is None:
        return {}, preset, list(data or [])
    import json

    try:
        plan = json.loads(recipe.read_text())
    except (OSError, json.JSONDecodeError) as err:
        fail(f"{recipe}: cannot read the recipe: {err}")
    if not isinstance(plan, dict):
        fail(f"{recipe}: a recipe is a JSON object")
    unknown = set(plan) - {"preset", "codec", "train", "data", "semantic", "comment"}
    if unknown:
        fail(f"{recipe}: unknown recipe keys {sorted(unknown)}")
    if preset == "codeclab-16k-speech" and plan.get("preset"):
        preset = plan["preset"]
    if not data:
        data = [
            str((recipe.parent / d) if not Path(d).is_absolute() and (recipe.parent / d).exists() else d)
            for d in plan.get("data", [])
        ]
    return plan, preset, list(data)


SEMANTIC_KEYS = {"teacher": str, "loss": str, "weight": (int, float), "codebooks": int, "hidden": int}


def _recipe_semantic(block: object, recipe: Path | None) -> tuple[str, str, float, int, int]:
    """A recipe's "semantic" block ({"teacher": DIR, "loss": "split", "weight": 5, "codebooks": 1,
    "hidden": 0}: what --semantic and its options say; used when --semantic is not given; the teacher
    path is relative to the directory you run from, as data paths are) -> their values."""
    if not isinstance(block, dict) or not isinstance(block.get("teacher"), str):
        raise ValueError(f'{recipe}: "semantic" must be an object with a "teacher" directory')
    for key, value in block.items():
        kind = SEMANTIC_KEYS.get(key)
        if kind is None:
            raise ValueError(f'{recipe}: unknown "semantic" key {key!r}; known: {", ".join(SEMANTIC_KEYS)}')
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f'{recipe}: "semantic" {key} has the wrong type ({value!r})')
    return (
        block["teacher"],
        block.get("loss", "split"),
        float(block.get("weight", 1.0)),
        int(block.get("codebooks", 1)),
        int(block.get("hidden", 0)),
    )


def _train_overrides(plan: dict, settings: list[str] | None, **options: object) -> dict[str, str]:
    """TrainConfig overrides as text: the recipe's "train", then each --set key=value, then the named
    options that were given (the command line wins)."""
    overrides = {key: _setting_text(value) for key, value in plan.get("train", {}).items()}
    for item in settings or []:
        if "=" not in item:
            fail(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    overrides.update({key: str(value) for key, value in options.items() if value is not None})
    return overrides


def _codec_config(
    entry, plan: dict, semantic: str | None, loss: str, weight: float, codebooks: int, hidden: int
):
    """The architecture to train: the preset's, or the recipe's "codec", with a semantic head when a
    teacher is given (raises ValueError / ImportError for a bad config or teacher)."""
    codec_config = entry.extra["config"]()
    if plan.get("codec"):
        from codeclab.codecs.neural import CodecConfig

        codec_config = CodecConfig.from_dict(plan["codec"])
    if semantic is None:
        return codec_config
    from codeclab.codecs.semantic import SemanticConfig
    from codeclab.teachers import load_teacher

    teacher = load_teacher(semantic)
    console.print(f"distilling {teacher.name} ({teacher.dim}-dim, {teacher.frame_rate:g} Hz) with {loss}")
    return codec_config.with_semantic(
        SemanticConfig(
            teacher=semantic,
            teacher_dim=teacher.dim,
            codebooks=codebooks,
            loss=loss,
            weight=weight,
            hidden=hidden,
        )
    )


def _setting_text(value: object) -> str:
    """A recipe's JSON value as the key=value text `TrainConfig.with_overrides` parses."""
    import json

    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value).lower() if isinstance(value, bool) else str(value)
