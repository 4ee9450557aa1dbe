"""What a training run tells its user: config.json of the run, metrics.jsonl (and TensorBoard when
installed), the progress bar, and the codebook-collapse warning. Only rank 0 writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from codeclab._files import atomic_write_json
from codeclab.train.health import perplexities_line, weak_stages

log = logging.getLogger("codeclab.train")


class RunLog:
    """The run directory's logs for rank 0 (`active`); every call is a no-op on other ranks."""

    def __init__(self, run_dir: Path, active: bool, show_progress: bool) -> None:
        self.run_dir, self.active, self.show_progress = run_dir, active, show_progress
        self.writer: Any = None  # a TensorBoard SummaryWriter, once `open_tensorboard` found one
        self.bar: Any = None  # (rich Progress, task id) while the progress bar runs

    def write_run_config(self, record: dict[str, Any]) -> None:
        """RUN/config.json: the codec and training configs, the data, the world size, the version."""
        if self.active:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir / "config.json", record)

    def open_tensorboard(self) -> None:
        if not self.active:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning(
                "tensorboard is not installed: pip install tensorboard (metrics.jsonl is written anyway)"
            )
            return
        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def record(self, record: dict[str, Any]) -> None:
        """One line of metrics.jsonl (and its scalars to TensorBoard)."""
        if not self.active:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, record["step"])

    def start_progress(self, total: int, completed: int) -> None:
        if not (self.active and self.show_progress):
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("mel {task.fields[mel]:.3f}"),
            TextColumn("ppl {task.fields[ppl]}"),
            TimeRemainingColumn(),
        )
        task = progress.add_task("train", total=total, completed=completed, mel=float("nan"), ppl="-")
        progress.start()
        self.bar = (progress, task)

    def progress(self, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar[0].update(
                self.bar[1], completed=step + 1, mel=metrics["loss/mel"], ppl=perplexities_line(metrics)
            )

    def warn_weak_codebooks(
        self, step: int, metrics: dict[str, float], codebook_size: int, fraction: float
    ) -> None:
        """Warn when stages' EMA perplexity is below `fraction` of the codebook size."""
        weak = weak_stages(metrics, codebook_size, fraction)
        if self.active and weak:
            log.warning(
                "step %d: codebook stage(s) %s use few codes (EMA perplexity below %.0f%% of %d): "
                "they may be collapsing",
                step,
                ", ".join(str(i + 1) for i in weak),
                100 * fraction,
                codebook_size,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar[0].stop()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
