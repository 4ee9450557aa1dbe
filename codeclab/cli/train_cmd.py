"""`codeclab train`: train a codec preset on a corpus (one process, or many under torchrun)."""

from __future__ import annotations

from pathlib import Path

import typer

from codeclab.cli.common import console, device_or_fail, fail, setup_logging
from codeclab.train.recipe import (
    Recipe,
    SemanticChoice,
    codec_config_to_train,
    read_recipe,
    train_overrides,
)

PRESET_OPTION = typer.Option(
    "codeclab-16k-speech", "--preset", help="codeclab preset whose architecture to train."
)
RECIPE_OPTION = typer.Option(
    None,
    "--recipe",
    help='JSON recipe: {"preset": NAME, "codec": {codec config}, "train": {TrainConfig fields}, '
    '"data": [...]}; command-line options override it.',
)
DATA_OPTION = typer.Option(
    None,
    "--data",
    help="Directory, glob or manifest (repeatable); a `split` column marks validation items.",
)
OUT_OPTION = typer.Option(
    ..., "--out", help="Run directory (config, metrics.jsonl, checkpoints, samples, codec/)."
)
STEPS_OPTION = typer.Option(
    None, "--steps", help="Total training steps (default: the recipe's, else TrainConfig's 100,000)."
)
RESUME_OPTION = typer.Option(False, "--resume", help="Continue from the run directory's latest checkpoint.")
BATCH_SIZE_OPTION = typer.Option(
    None, "--batch-size", help="Crops per step (default: the recipe's, else 16)."
)
SEGMENT_SECONDS_OPTION = typer.Option(
    None, "--segment-seconds", help="Length of the training crops (default: the recipe's, else 1.0)."
)
DEVICE_OPTION = typer.Option(
    None, "--device", help="cpu, cuda or cuda:N (default: cuda when present; torchrun: cuda:LOCAL_RANK)."
)
STOP_AFTER_OPTION = typer.Option(
    None, "--stop-after", help="Stop (with a checkpoint) after this many steps of this run."
)
SETTINGS_OPTION = typer.Option(
    None, "--set", help="Any TrainConfig field as key=value (repeatable), e.g. --set adversarial=false."
)
SEMANTIC_OPTION = typer.Option(
    None,
    "--semantic",
    help="Distil a teacher into codebook 1: a phone-teacher directory (codeclab teacher train) or a "
    "transformers HuBERT/WavLM/wav2vec2/w2v-BERT directory or hub id, optionally :LAYER (int or avg).",
)
SEMANTIC_LOSS_OPTION = typer.Option(
    "cosine",
    "--semantic-loss",
    help="cosine (SpeechTokenizer D-axis), tsim (T-axis), mse (X-Codec), split (Mimi).",
)
SEMANTIC_WEIGHT_OPTION = typer.Option(1.0, "--semantic-weight", help="Weight of the distillation loss.")
SEMANTIC_CODEBOOKS_OPTION = typer.Option(
    1, "--semantic-codebooks", help="How many leading codebooks the semantic head reads."
)
SEMANTIC_HIDDEN_OPTION = typer.Option(
    0, "--semantic-hidden", help="0: linear head; N: a conv layer of N channels before the projection."
)
EXPORT_CHECKPOINT_OPTION = typer.Option(
    False,
    "--export-checkpoint",
    help="Train nothing: write OUT/codec from OUT's latest checkpoint (a run stopped before its end).",
)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    preset: str = PRESET_OPTION,
    recipe: Path = RECIPE_OPTION,
    data: list[str] = DATA_OPTION,
    out: Path = OUT_OPTION,
    steps: int = STEPS_OPTION,
    resume: bool = RESUME_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    segment_seconds: float = SEGMENT_SECONDS_OPTION,
    device: str | None = DEVICE_OPTION,
    stop_after: int = STOP_AFTER_OPTION,
    settings: list[str] = SETTINGS_OPTION,
    semantic: str = SEMANTIC_OPTION,
    semantic_loss: str = SEMANTIC_LOSS_OPTION,
    semantic_weight: float = SEMANTIC_WEIGHT_OPTION,
    semantic_codebooks: int = SEMANTIC_CODEBOOKS_OPTION,
    semantic_hidden: int = SEMANTIC_HIDDEN_OPTION,
    export_checkpoint: bool = EXPORT_CHECKPOINT_OPTION,
) -> None:
    """Train a codec; under torchrun every rank trains on its own batches with DistributedDataParallel."""
    setup_logging()
    device = device_or_fail(device)
    try:
        recipe_read = read_recipe(recipe) if recipe is not None else Recipe()
    except ValueError as err:
        fail(err)
    if preset == "codeclab-16k-speech" and recipe_read.preset:
        preset = recipe_read.preset
    data = list(data or recipe_read.data)
    if export_checkpoint:
        _export(out, preset)
        return
    if not data:
        fail('no training data: pass --data (or a recipe with "data")')
    choice = SemanticChoice(semantic, semantic_loss, semantic_weight, semantic_codebooks, semantic_hidden)
    options = dict(steps=steps, batch_size=batch_size, segment_seconds=segment_seconds)
    _train(
        preset,
        recipe_read,
        choice if semantic else recipe_read.semantic,
        data,
        out,
        device,
        resume,
        stop_after,
        train_overrides_or_fail(recipe_read, settings, options),
    )


def train_overrides_or_fail(recipe: Recipe, settings: list[str] | None, options: dict) -> dict[str, str]:
    try:
        return train_overrides(recipe.train, settings, **options)
    except ValueError as err:
        fail(err)


def _export(out: Path, preset: str) -> None:
    """--export-checkpoint: OUT/codec from OUT's latest checkpoint."""
    from codeclab.train.export import export_checkpoint

    try:
        written = export_checkpoint(out, name=preset)
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    console.print(f"codec saved to {written} (codeclab.load_codec('{written}'))")


def _train(
    preset: str,
    recipe: Recipe,
    semantic: SemanticChoice | None,
    data: list[str],
    out: Path,
    device: str | None,
    resume: bool,
    stop_after: int | None,
    overrides: dict[str, str],
) -> None:
    from codeclab.catalog.registry import get_entry
    from codeclab.train.config import TrainConfig
    from codeclab.train.trainer import Trainer

    try:
        entry = get_entry(preset)
    except ValueError as err:
        fail(err)
    if entry.family != "codeclab":
        fail(
            f"{preset} is a peer codec; train a codeclab preset (codeclab-16k-speech, codeclab-24k-audio, ...)"
        )
    try:
        config = TrainConfig().with_overrides(overrides)
        codec_config, teacher = codec_config_to_train(entry.extra["config"](), recipe.codec, semantic)
        if teacher is not None and semantic is not None:
            console.print(
                f"distilling {teacher.name} ({teacher.dim}-dim, {teacher.frame_rate:g} Hz) with {semantic.loss}"
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
