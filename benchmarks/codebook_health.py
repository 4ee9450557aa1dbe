"""Codebook health at two batch sizes: the small RVQ codec of tests/train/test_codebook_health.py trained on
the real speech shipped with the tests, with the same audio seen at each batch size.

    python benchmarks/codebook_health.py --batches 8 32 --crops 3200   (trains on one thread)

Prints, per batch size: steps, wall time, every stage's EMA perplexity (of 32 codes) and batch perplexity,
and the held-out (Carlo) mel distance at n_q = 1, 2, 4, 8.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.train.test_codebook_health import K, heldout_mel_by_n_q, train_small_codec  # noqa: E402


def run(batch: int, crops: int) -> dict:
    """One training of the test's codec at `batch`, `crops // batch` steps (the same audio at any batch)."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        trainer, last = train_small_codec(Path(tmp), batch=batch, steps=crops // batch)
        wall = time.perf_counter() - started
        mel = dict(zip((1, 2, 4, 8), heldout_mel_by_n_q(trainer.codec.eval())))
    return {
        "batch": batch,
        "steps": crops // batch,
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
