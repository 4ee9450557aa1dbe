"""Semantic probe: how well do a codec's tokens predict frame-level phones?

Items come from a token store of a corpus whose manifest links phone alignments (the demo corpus's espeak
items have `<file>.phones.json`). Frame f of an item gets the phone at the centre of [f, f + 1) / frame_rate.
Training frames come from the manifest's `train` split, test frames from `validation`.

- Per codebook: a linear probe on one-hot codes. Unregularised, its cross-entropy optimum predicts, for each
  code, the phone most often seen with it in training; that is computed exactly from counts (codes never
  seen in training predict the overall majority phone).
- All codebooks: a logistic-regression probe on the concatenated one-hot codes (trained with Adam).
- Baseline: always the training majority phone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from codeclab._progress import progress_task
from codeclab.corpora.phonemes import frame_labels, read_sidecar
from codeclab.eval.lm_bench import store_fingerprint
from codeclab.eval.report import provenance, write_json, write_table
from codeclab.tokens.store import TokenStore


@dataclass
class Frames:
    codes: np.ndarray  # [N, Q] int64
    labels: list[str]


def labelled_frames(store: TokenStore, manifest: str | Path) -> dict[str, Frames]:
    """{"train": Frames, "validation": Frames} from the store's items that the manifest aligns."""
    manifest = Path(manifest)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    frame_rate = store.frame_rate
    split_codes: dict[str, list[np.ndarray]] = {"train": [], "validation": []}
    split_labels: dict[str, list[str]] = {"train": [], "validation": []}
    for row in rows:
        if not row.get("phones") or row["id"] not in store:
            continue
        record = store[row["id"]]
        phones = read_sidecar(manifest.parent / row["phones"])
        labels = frame_labels(phones, frame_rate, record.num_frames)
        split = "validation" if row.get("split") == "validation" else "train"
        split_codes[split].append(record.codes.T.astype(np.int64))
        split_labels[split] += labels
    if not split_codes["train"] or not split_codes["validation"]:
        raise ValueError(
            f"{store.path}: no phone-aligned items in both splits of {manifest} (is the store tokenized from it?)"
        )
    return {s: Frames(np.concatenate(split_codes[s]), split_labels[s]) for s in split_codes}


def probe_store(
    store_path: str | Path, manifest: str | Path, steps: int = 300, seed: int = 0
) -> dict[str, Any]:
    store = TokenStore(store_path)
    data = labelled_frames(store, manifest)
    train, test = data["train"], data["validation"]
    phones = sorted(set(train.labels))
    index = {p: i for i, p in enumerate(phones)}
    y_train = np.array([index[p] for p in train.labels])
    y_test = np.array([index.get(p, -1) for p in test.labels])  # phones unseen in training can't be predicted
    k, n_q, n_phones = store.codebook_size, train.codes.shape[1], len(phones)
    majority = int(np.bincount(y_train, minlength=n_phones).argmax())
    per_codebook = []
    for q in range(n_q):
        counts = np.zeros((k, n_phones), dtype=np.int64)
        np.add.at(counts, (train.codes[:, q], y_train), 1)
        prediction = np.where(counts.sum(1) > 0, counts.argmax(1), majority)
        per_codebook.append(float((prediction[test.codes[:, q]] == y_test).mean()))

    torch.manual_seed(seed)
    weights = torch.zeros(n_q, k, n_phones, requires_grad=True)
    bias = torch.zeros(n_phones, requires_grad=True)
    optimizer = torch.optim.Adam([weights, bias], lr=0.05)
    codes_t, y_t = torch.from_numpy(train.codes), torch.from_numpy(y_train)
    q_index = torch.arange(n_q)[None, :]

    def logits(codes: torch.Tensor) -> torch.Tensor:
        return weights[q_index, codes].sum(1) + bias

    with progress_task(f"probe {Path(store_path).name}", steps, "steps") as advance:
        for _ in range(steps):
            loss = F.cross_entropy(logits(codes_t), y_t) + 1e-4 * weights.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            advance()
    with torch.no_grad():
        joint = float((logits(torch.from_numpy(test.codes)).argmax(1).numpy() == y_test).mean())
    return {
        "store": str(store_path),
        "codec": store.metadata["codec"].get("name"),
        "weights_sha256": store.metadata["codec"].get("weights_sha256"),
        "store_sha256": store_fingerprint(store),
        "n_q": n_q,
        "codebook_size": k,
        "phones": n_phones,
        "train_frames": len(y_train),
        "test_frames": len(y_test),
        "majority_baseline": float((y_test == majority).mean()),
        "per_codebook_accuracy": per_codebook,
        "all_codebooks_accuracy": joint,
    }


def run_probe(
    stores: list[str],
    manifest: str | Path,
    out: str | Path,
    steps: int = 300,
    command: list[str] | None = None,
    log=print,
) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for store in stores:
        row = probe_store(store, manifest, steps)
        rows.append(row)
        per = ", ".join(f"q{q}: {a:.3f}" for q, a in enumerate(row["per_codebook_accuracy"]))
        log(
            f"{store}: {per}; all {row['all_codebooks_accuracy']:.3f}; majority {row['majority_baseline']:.3f}"
        )
    report = {"provenance": provenance(command, manifest=str(manifest)), "results": rows}
    write_json(report, out / "probe.json")
    table = []
    for r in rows:
        entry = {
            k: r[k]
            for k in (
                "store",
                "codec",
                "phones",
                "test_frames",
                "majority_baseline",
                "all_codebooks_accuracy",
            )
        }
        for q, accuracy in enumerate(r["per_codebook_accuracy"]):
            entry[f"codebook {q + 1}"] = accuracy
        table.append(entry)
    columns = [
        "store",
        "codec",
        "phones",
        "test_frames",
        "majority_baseline",
        *[f"codebook {q + 1}" for q in range(max(r["n_q"] for r in rows))],
        "all_codebooks_accuracy",
    ]
    write_table(
        table,
        columns,
        out / "probe",
        "Phone probe (frame accuracy on the validation split)",
        [f"provenance: {report['provenance']['command']}; {report['provenance']['machine']}"],
    )
    return report
