"""Would a context model pay for range coding? Per codebook, the ideal bits per code on held-out tokens of
a unigram (what `.clab` ships) and of a Witten-Bell bigram over the previous frame's code of the same
codebook, both fitted on training tokens; and the bigram's table size (distinct code pairs seen).

    python benchmarks/entropy_context.py TRAIN_STORE HELDOUT_STORE
"""

from __future__ import annotations

import argparse

from codeclab.eval.ngram import BigramModel
from codeclab.tokens.store import TokenStore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("train")
    parser.add_argument("heldout")
    args = parser.parse_args()
    train, held = TokenStore(args.train), TokenStore(args.heldout)
    train_codes = [r.codes for r in train]
    held_codes = [r.codes for r in held]
    frame_rate = train.frame_rate
    print(
        f"fitted on {len(train_codes)} items of {args.train}; scored on {len(held_codes)} of {args.heldout}\n"
    )
    print(
        "| codebook | unigram bits/code | bigram bits/code | saving (bps at 50 Hz) | code pairs in the table |"
    )
    print("|---|---|---|---|---|")
    total_uni = total_bi = 0.0
    for q in range(train.n_q):
        model = BigramModel(train.codebook_size).fit([c[q] for c in train_codes])
        uni, bi, n = model.bits([c[q] for c in held_codes])
        pairs = sum(int((row > 0).sum()) for row in model.pairs.values())
        total_uni, total_bi = total_uni + uni / n, total_bi + bi / n
        print(f"| {q + 1} | {uni / n:.3f} | {bi / n:.3f} | {(uni - bi) / n * frame_rate:+.0f} | {pairs:,} |")
    print(
        f"| all | {total_uni:.3f} | {total_bi:.3f} | {(total_uni - total_bi) * frame_rate:+.0f} | |\n\n"
        f"ideal kbps at n_q {train.n_q}: unigram {total_uni * frame_rate / 1000:.3f}, bigram "
        f"{total_bi * frame_rate / 1000:.3f} (nominal {train.n_q * (train.codebook_size - 1).bit_length() * frame_rate / 1000:g})"
    )


if __name__ == "__main__":
    main()
