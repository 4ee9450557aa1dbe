"""Semantic probe: how well do a codec's tokens predict frame-level phones?

Items come from a token store of a corpus whose manifest links phone alignments (the demo corpus's espeak
items have `<file>.phones.json`). Frame f of an item gets the phone at the centre of [f, f + 1) / frame_rate.
Training frames come from the manifest's `train` split, test frames from `validation`.

- Per codebook: a linear probe on one-hot codes. Unregularised, its cross-entropy optimum predicts, for each
  code, the phone most often seen with it in training; that is computed exactly from counts (codes never
  seen in training predict the overall majority phone).
- All codebooks: a logistic-regression probe on the concatenated one-hot codes (trained with Adam).
- Baseline: always the training majority phone.

Scores comparable across codebooks and codebook sizes, beside the raw accuracy:
- `gain`: (accuracy - majority) / (1 - majority), the share of the majority baseline's errors removed;
- `information`: the phone information a codebook carries, measured out of sample as a share of the
  phone entropy (`heldout_information`). HuBERT's PNMI (an in-sample I(phone; code) / H(phone)) is not
  used: with 1,024 codes and a few thousand frames its plug-in estimate gives codes unrelated to phones
  0.6, and the Miller-Madow correction still 0.22 (measured on 4,000 random frames).

Labels on real speech: a corpus without phone alignments is labelled by a phone teacher
(`labels="teacher:DIR"`, e.g. the offline phone teacher of docs/semantic.md): each frame takes the
teacher's most probable phone at the frame's centre. Such labels are the teacher's opinion, not a
forced alignment, and reports say so; the validation split is then the first 20 % of the items by a
fixed hash of their ids.
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
from codeclab.eval.lm_bench import held_out_ids, store_fingerprint
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


TEACHER_VALIDATION_PERCENT = 20


def teacher_labelled_frames(store: TokenStore, teacher_dir: str | Path) -> dict[str, Frames]:
    """{"train", "validation"} Frames of every store item, labelled by a phone teacher's argmax phone at
    each codec frame's centre; validation: 20 % of the items, chosen by `held_out_ids`."""
    from codeclab.audio.io import load_audio
    from codeclab.teachers import codec_frame_times, features_at
    from codeclab.teachers.phone import PhoneTeacher

    teacher = PhoneTeacher.load(teacher_dir)
    phones = teacher.config.phones
    ids = store.ids()
    held = held_out_ids(ids, TEACHER_VALIDATION_PERCENT)
    codes: dict[str, list[np.ndarray]] = {"train": [], "validation": []}
    labels: dict[str, list[str]] = {"train": [], "validation": []}
    with progress_task(f"teacher labels {Path(store.path).name}", len(ids), "items") as advance:
        for item_id in ids:
            record = store[item_id]
            wav = load_audio(record.path, teacher.sample_rate, 1, record.start, record.end)[0]
            posteriors = teacher.item_features(torch.from_numpy(wav))
            times = codec_frame_times(record.num_frames, store.frame_rate)
            best = features_at(posteriors, teacher.frame_rate, times).argmax(-1).tolist()
            split = "validation" if item_id in held else "train"
            codes[split].append(record.codes.T.astype(np.int64))
            labels[split] += [phones[i] for i in best]
            advance()
    if not codes["train"] or not codes["validation"]:
        raise ValueError(f"{store.path}: too few items to split into train and validation")
    return {s: Frames(np.concatenate(codes[s]), labels[s]) for s in codes}


PRIOR_WEIGHTS = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0)  # pseudo-frames of the phone prior


def heldout_information(
    train_codes: np.ndarray,
    train_labels: np.ndarray,
    test_codes: np.ndarray,
    test_labels: np.ndarray,
    n_labels: int,
) -> float:
    """Phone information a codebook carries, measured out of sample, as a share of H(phone):
    (H - CE) / H, with H the validation labels' cross-entropy under the training phone prior and CE their
    cross-entropy under P(phone | code) = (n(code, phone) + m P(phone)) / (n(code) + m) from training
    counts. The prior weight m is chosen by leave-one-out cross-entropy on the training frames (never on
    the validation frames). Codes unrelated to phones score about 0 whatever the codebook size (an
    in-sample mutual information grows with the number of codes instead); 1 means the code fixes the
    phone."""
    prior = (np.bincount(train_labels, minlength=n_labels) + 0.5) / (len(train_labels) + 0.5 * n_labels)
    size = int(max(train_codes.max(initial=0), test_codes.max(initial=0))) + 1
    counts = np.zeros((size, n_labels), dtype=np.float64)
    np.add.at(counts, (train_codes, train_labels), 1)
    totals = counts.sum(1)

    def loo_cross_entropy(m: float) -> float:
        own = counts[train_codes, train_labels] - 1
        p = (own + m * prior[train_labels]) / (totals[train_codes] - 1 + m)
        return float(-np.log2(p).mean())

    m = min(PRIOR_WEIGHTS, key=loo_cross_entropy)
    conditional = (counts + m * prior[None]) / (totals[:, None] + m)
    h = float(-np.log2(prior[test_labels]).mean())
    ce = float(-np.log2(conditional[test_codes, test_labels]).mean())
    return (h - ce) / h if h > 0 else float("nan")


def probe_store(
    store_path: str | Path,
    manifest: str | Path | None,
    steps: int = 300,
    seed: int = 0,
    labels: str | None = None,
) -> dict[str, Any]:
    """Probe one store, labelled by the manifest's alignments or (labels="teacher:DIR") a phone teacher."""
    store = TokenStore(store_path)
    if labels is not None:
        kind, _, teacher_dir = labels.partition(":")
        if kind != "teacher" or not teacher_dir:
            raise ValueError(f"labels must be teacher:DIR (a phone teacher directory), got {labels!r}")
        data = teacher_labelled_frames(store, teacher_dir)
    elif manifest is not None:
        data = labelled_frames(store, manifest)
    else:
        raise ValueError("give a manifest with phone alignments, or labels='teacher:DIR'")
    train, test = data["train"], data["validation"]
    phones = sorted(set(train.labels))
    index = {p: i for i, p in enumerate(phones)}
    y_train = np.array([index[p] for p in train.labels])
    y_test = np.array([index.get(p, -1) for p in test.labels])  # phones unseen in training can't be predicted
    k, n_q, n_phones = store.codebook_size, train.codes.shape[1], len(phones)
    majority = int(np.bincount(y_train, minlength=n_phones).argmax())
    per_codebook = []
    per_pnmi: list[float] = []
    known = y_test >= 0
    for q in range(n_q):
        counts = np.zeros((k, n_phones), dtype=np.int64)
        np.add.at(counts, (train.codes[:, q], y_train), 1)
        prediction = np.where(counts.sum(1) > 0, counts.argmax(1), majority)
        per_codebook.append(float((prediction[test.codes[:, q]] == y_test).mean()))
        per_pnmi.append(
            heldout_information(train.codes[:, q], y_train, test.codes[known, q], y_test[known], n_phones)
        )

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
        "per_codebook_gain": [_gain(a, float((y_test == majority).mean())) for a in per_codebook],
        "per_codebook_information": per_pnmi,
        "all_codebooks_accuracy": joint,
        "all_codebooks_gain": _gain(joint, float((y_test == majority).mean())),
        "labels": labels or "manifest alignments",
    }


def _gain(accuracy: float, majority: float) -> float:
    """Share of the majority baseline's errors that the probe removes (0: no better, 1: perfect)."""
    return (accuracy - majority) / (1 - majority) if majority < 1 else float("nan")


def run_probe(
    stores: list[str],
    manifest: str | Path | None,
    out: str | Path,
    steps: int = 300,
    command: list[str] | None = None,
    log=print,
    labels: str | None = None,
) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for store in stores:
        row = probe_store(store, manifest, steps, labels=labels)
        rows.append(row)
        per = ", ".join(
            f"q{q}: {a:.3f} (information {m:.3f})"
            for q, (a, m) in enumerate(zip(row["per_codebook_accuracy"], row["per_codebook_information"]))
        )
        log(
            f"{store}: {per}; all {row['all_codebooks_accuracy']:.3f}; majority {row['majority_baseline']:.3f}"
        )
    source = labels or str(manifest)
    report: dict[str, Any] = {
        "provenance": provenance(command, manifest=str(manifest), labels=source),
        "results": rows,
    }
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
        for q, (accuracy, gain, mi) in enumerate(
            zip(r["per_codebook_accuracy"], r["per_codebook_gain"], r["per_codebook_information"])
        ):
            entry[f"codebook {q + 1}"] = f"{accuracy:.3f} / {gain:.3f} / {mi:.3f}"
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
        "Phone probe (validation frames)",
        [
            "codebook cells: accuracy / gain over the majority baseline ((acc - maj) / (1 - maj)) / held-out "
            "phone information (share of H(phone) the code removes, out of sample): gain and information "
            "compare across codebook sizes",
            f"labels: {source}"
            + (" (the teacher's most probable phone per frame, not a forced alignment)" if labels else ""),
            f"provenance: {report['provenance']['command']}; {report['provenance']['machine']}",
        ],
    )
    return report
