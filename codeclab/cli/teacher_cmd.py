"""`codeclab teacher`: build the offline phone teacher; inspect and cache any teacher's features."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from codeclab.cli.common import console, fail, setup_logging

teacher_app = typer.Typer(help="Teachers for semantic distillation.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(teacher_app, name="teacher")


@teacher_app.command("train")
def train_teacher_command(
    data: Path = typer.Option(
        ..., "--data", help="Manifest with phone alignments (codeclab corpus demo writes one)."
    ),
    out: Path = typer.Option(..., "--out", help="Teacher directory (teacher.json + model.safetensors)."),
    steps: int = typer.Option(1500, "--steps", help="Training steps."),
    batch_size: int = typer.Option(16, "--batch-size", help="Crops per step."),
    seconds: float = typer.Option(3.0, "--seconds", help="Length of the training crops."),
    lr: float = typer.Option(2e-3, "--lr", help="Learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation and batches."),
) -> None:
    """Train a frame-level phone recogniser on espeak-ng alignments; report validation accuracy."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from codeclab.teachers.phone import train_phone_teacher

    setup_logging(30)
    with Progress(
        TextColumn("[bold]teacher"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("teacher", total=steps, loss=float("nan"))
        try:
            teacher = train_phone_teacher(
                data,
                out,
                steps,
                batch_size,
                seconds,
                lr,
                seed,
                progress=lambda step, loss: progress.update(task, completed=step, loss=loss),
            )
        except ValueError as err:
            fail(err)
    info = teacher.info
    console.print(
        f"{out}: {teacher.dim} phones at {teacher.frame_rate:g} Hz; frame accuracy on the validation split "
        f"{info['validation_accuracy']:.3f} ({info['validation_frames']} frames, {info['validation_items']} items; "
        f"majority phone {info['majority_baseline']:.3f}; train {info['train_accuracy']:.3f})"
    )
    console.print(f"use it: codeclab train --semantic {out} ...")


@teacher_app.command("info")
def teacher_info_command(
    teacher: str = typer.Argument(..., help="Teacher spec: DIR or hub id, optionally :LAYER."),
) -> None:
    """Print a teacher's sample rate, frame rate, feature size and fingerprint."""
    from codeclab.teachers import load_teacher

    try:
        t = load_teacher(teacher)
    except (ValueError, ImportError) as err:
        fail(err)
    for key, value in {**t.describe(), "fingerprint": t.fingerprint()}.items():
        console.print(f"{key}: {value}")


@teacher_app.command("cache")
def teacher_cache_command(
    teacher: str = typer.Option(..., "--teacher", help="Teacher spec: DIR or hub id, optionally :LAYER."),
    data: list[str] = typer.Option(..., "--data", help="Directory, glob or manifest (repeatable)."),
    cache: Path = typer.Option(
        ..., "--cache", help="Cache directory (give it to training: --set teacher_cache=DIR)."
    ),
    target_db: float = typer.Option(
        -20.0, "--target-db", help="Loudness the audio is normalised to (as in training)."
    ),
) -> None:
    """Compute and store teacher features for every file of a corpus ahead of training."""
    from codeclab.corpora.manifest import discover
    from codeclab.teachers import load_teacher
    from codeclab.teachers.cache import TeacherCache

    setup_logging()
    try:
        store = TeacherCache(cache, load_teacher(teacher), target_db)
        paths = sorted({item.path for item in discover(data)})
    except (ValueError, ImportError, FileNotFoundError) as err:
        fail(err)
    computed, failed = store.fill(paths)
    console.print(f"{store.dir}: {len(paths) - len(failed)} files ({computed} computed now)")
    for path, reason in failed:
        console.print(f"[yellow]skipped[/] {escape(str(path))}: {escape(str(reason))}", markup=True)
    if failed:
        raise typer.Exit(1)
