"""Codebook health at two batch sizes: the small RVQ codec of tests/train/test_codebook_health.py trained on
the real speech shipped with the tests, with the same audio seen at each batch size.

    OMP_NUM_THREADS=1 python benchmarks/codebook_health.py --batches 8 32 --crops 3200

Prints, per batch size: steps, wall time, every stage's EMA perplexity (of 32 codes) and batch perplexity,
and the held-out (Carlo) mel distance at n_q = 1, 2, 4, 8.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codeclab.train.config import TrainConfig  # noqa: E402
from codeclab.train.trainer import Trainer  # noqa: E402
from tests.train.test_codebook_health import (  # noqa: E402
    HELDOUT_SPEAKER,
    SPEECH,
    K,
    codec_config,
    heldout_mel_by_n_q,
)


def run(batch: int, crops: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        train_dir = Path(tmp) / "train"
        train_dir.mkdir()
        for path in SPEECH.glob("*.flac"):
            if not path.name.startswith(HELDOUT_SPEAKER):
                (train_dir / path.name).symlink_to(path)
        config = TrainConfig(
            steps=crops // batch,
            batch_size=batch,
            segment_seconds=0.5,
            lr=2e-3,
            warmup_steps=20,
            adversarial=False,
            num_workers=0,
            log_every=10,
            validate_every=10**6,
            checkpoint_every=10**6,
            val_items=1,
            samples_to_write=0,
        )
        torch.manual_seed(0)
        started = time.perf_counter()
        trainer = Trainer(
            codec_config(), config, [str(train_dir)], Path(tmp) / "run", device="cpu", show_progress=False
        )
        last = trainer.run()
        wall = time.perf_counter() - started
        codec = trainer.codec.eval()
        mel = dict(zip((1, 2, 4, 8), heldout_mel_by_n_q(codec)))
    return {
        "batch": batch,
        "steps": config.steps,
        "wall_s": wall,
        "ema_ppl": [last[f"q{i}/ema_perplexity"] for i in range(8)],
        "batch_ppl": [last[f"q{i}/perplexity"] for i in range(8)],
        "mel": mel,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--crops", type=int, default=3200, help="training crops per run (steps x batch)")
    args = parser.parse_args()
    print(
        f"| batch | steps | wall s | EMA perplexity per stage (of {K}) | batch perplexity per stage | held-out mel n_q=1/2/4/8 |"
    )
    print("|---|---|---|---|---|---|")
    for batch in args.batches:
        r = run(batch, args.crops)
        ema = " ".join(f"{v:.0f}" for v in r["ema_ppl"])
        bat = " ".join(f"{v:.0f}" for v in r["batch_ppl"])
        mel = " / ".join(f"{v:.3f}" for v in r["mel"].values())
        print(f"| {batch} | {r['steps']} | {r['wall_s']:.0f} | {ema} | {bat} | {mel} |", flush=True)


if __name__ == "__main__":
    main()
