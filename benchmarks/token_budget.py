"""Quality at a token budget: join `codeclab bench recon` and `codeclab bench lm` reports into one table and
one plot (docs/llm.md, BENCHMARKS.md).

    python benchmarks/token_budget.py --recon bench-recon/results.json --lm lm-a/lm.json --lm lm-b/lm.json \
        --out token-budget

Each row is a codec at an n_q, as codes (flatten) or through an acoustic BPE: tokens per second of audio
(measured on the LM benchmark's held-out items for BPE; n_q x frame rate for codes), the reconstruction
quality of that codec and n_q (a BPE is lossless, so it shares its codes' quality), and the token LM's
bits per second of audio. Writes token_budget.md, token_budget.json and token_budget.png (quality and LM
bits against tokens per second).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

QUALITY = ("stoi", "pesq_wb", "mel_distance")


def load_rows(recon: list[Path], lm: list[Path]) -> list[dict]:
    quality = {}
    for path in recon:
        for row in json.loads(path.read_text())["results"]:
            quality[(row["series"], row.get("n_q"))] = row
    rows = []
    for path in lm:
        for row in json.loads(path.read_text())["results"]:
            if row["pattern"] in ("unigram", "bigram", "delay"):
                continue
            seen = quality.get((row["codec"], row["n_q"]), {})
            bpe = row.get("bpe_vocab_size")
            rows.append(
                {
                    "codec": row["codec"],
                    "n_q": row["n_q"],
                    "tokens": f"BPE {bpe:,} ids" if bpe else "codes",
                    "tokens_per_second": row["tokens_per_second"],
                    "nominal_kbps": seen.get("nominal_kbps", math.nan),
                    **{m: seen.get(m, math.nan) for m in QUALITY},
                    "lm_bits_per_second": row["bits_per_second"],
                    "lm_vs_ngram": row["vs_ngram_bits_per_second"],
                }
            )
    return sorted(rows, key=lambda r: (r["tokens_per_second"], r["codec"]))


def table(rows: list[dict]) -> str:
    head = (
        "| codec | n_q | tokens | tokens/s | kbps | STOI | PESQ-WB | mel distance | LM bits/s (vs n-gram) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['codec']} | {r['n_q']} | {r['tokens']} | {r['tokens_per_second']:.1f} | {r['nominal_kbps']:.3g} "
            f"| {r['stoi']:.3f} | {r['pesq_wb']:.3f} | {r['mel_distance']:.3f} "
            f"| {r['lm_bits_per_second']:,.0f} ({r['lm_vs_ngram']:+.0f}) |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {"codes": "o"}
    for codec in sorted({r["codec"] for r in rows}):
        for kind in sorted({r["tokens"] for r in rows}):
            points = [r for r in rows if r["codec"] == codec and r["tokens"] == kind]
            if not points:
                continue
            label = f"{codec} {kind}"
            marker = markers.get(kind, "^" if "BPE" in kind else "s")
            xs = [p["tokens_per_second"] for p in points]
            left.plot(xs, [p["stoi"] for p in points], marker=marker, linestyle="-", label=label)
            right.plot(
                xs, [p["lm_bits_per_second"] for p in points], marker=marker, linestyle="-", label=label
            )
            for p in points:
                left.annotate(f"{p['n_q']}", (p["tokens_per_second"], p["stoi"]), fontsize=7)
    for ax, title in ((left, "STOI (held-out speech)"), (right, "token LM bits per second of audio")):
        ax.set_xscale("log")
        ax.set_xlabel("tokens per second of audio")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recon", type=Path, action="append", required=True, help="bench recon results.json")
    parser.add_argument("--lm", type=Path, action="append", required=True, help="bench lm lm.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = load_rows(args.recon, args.lm)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "token_budget.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "token_budget.md").write_text(table(rows))
    plot(rows, args.out / "token_budget.png")
    print(table(rows))


if __name__ == "__main__":
    main()
