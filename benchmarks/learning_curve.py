"""Plot a training run's held-out learning curve: mel distance and STOI against wall time.

    python benchmarks/learning_curve.py runs/codeclab-16k-speech --out docs/images/codeclab-16k-speech-curve.png

Reads RUN/metrics.jsonl: the validation rows that carry `heldout/mel_distance` (and `heldout/stoi`) and
`wall_seconds`, written when the run's TrainConfig has `eval_data`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_curve(run: Path) -> list[dict]:
    """Validation rows with `wall_seconds` made cumulative: each process of a run resumed with --resume
    counts its wall time from zero, so a row whose clock went back continues from the previous one's."""
    rows = []
    offset, last = 0.0, 0.0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "wall_seconds" not in record:
            continue
        if record["wall_seconds"] < last:  # a resumed process: its clock restarted
            offset += last
        last = record["wall_seconds"]
        record = {**record, "wall_seconds": record["wall_seconds"] + offset}
        if record.get("split") == "validation" and "heldout/mel_distance" in record:
            rows.append(record)
    if not rows:
        raise SystemExit(f"{run / 'metrics.jsonl'}: no held-out validation rows (was eval_data set?)")
    return rows


def plot(rows: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["wall_seconds"] / 60 for r in rows]
    fig, mel_ax = plt.subplots(figsize=(7, 4))
    mel_ax.plot(minutes, [r["heldout/mel_distance"] for r in rows], "o-", color="tab:blue")
    mel_ax.set_xlabel("wall time (minutes, 2 CPU cores)")
    mel_ax.set_ylabel("held-out mel distance (lower is better)", color="tab:blue")
    if all("heldout/stoi" in r for r in rows):
        stoi_ax = mel_ax.twinx()
        stoi_ax.plot(minutes, [r["heldout/stoi"] for r in rows], "s--", color="tab:orange")
        stoi_ax.set_ylabel("held-out STOI (higher is better)", color="tab:orange")
    mel_ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="codeclab-16k-speech: held-out speech during training")
    args = parser.parse_args()
    rows = read_curve(args.run)
    plot(rows, args.out, args.title)
    print(
        f"{args.out}: {len(rows)} points, last: step {rows[-1]['step']}, "
        + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items() if k.startswith("heldout/"))
    )


if __name__ == "__main__":
    main()
