"""An offline phonetic teacher: a frame-level phone recogniser trained by codeclab on espeak-ng alignments.

Self-supervised teachers (HuBERT, WavLM) cannot be downloaded on every machine. This one is built from the
demo corpus alone: espeak-ng reports where each phone starts (`codeclab.corpora.phonemes`), which gives exact
frame labels, and a small convolutional network learns log-mel -> phone. Its features are phone
posteriors [T, n_phones] at 100 frames per second: what a semantic head should make codebook 1 predict.

    teacher = train_phone_teacher("demo-corpus/manifest.jsonl", "runs/phone-teacher")
    PhoneTeacher.load("runs/phone-teacher").features(wav, lengths)  # [B, T, n_phones]

Files: `teacher.json` (format, config, phone inventory, validation accuracy, sha256 of the weights) and
`model.safetensors`. No pickle.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeclab.audio.io import AudioError, load_audio
from codeclab.audio.loudness import normalise_loudness
from codeclab.audio.spectral import log_mel
from codeclab.codecs.pretrained import WEIGHTS_FILE, checked_weights_file, load_state_into, write_weights_dir
from codeclab.corpora.phonemes import frame_labels, read_sidecar
from codeclab.teachers.base import Teacher

log = logging.getLogger("codeclab.teachers")

FORMAT = "codeclab-phone-teacher"
CONFIG_FILE = "teacher.json"


@dataclass
class PhoneTeacherConfig:
    """Log-mel front end (n_fft, hop at sample_rate; 100 frames/s by default) and a stack of residual
    dilated convolutions (`dilations`, `channels` wide, kernel `kernel`); phones: the label inventory."""

    phones: list[str] = field(default_factory=list)
    sample_rate: int = 16000
    n_fft: int = 400
    hop: int = 160
    n_mels: int = 80
    channels: int = 128
    kernel: int = 5
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 1])
    dropout: float = 0.1
    target_db: float = -20.0

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop


class PhoneNet(nn.Module):
    """log-mel [B, n_mels, T] -> phone logits [B, T, n_phones]."""

    mel_mean: Tensor  # a registered buffer
    mel_std: Tensor  # a registered buffer

    def __init__(self, config: PhoneTeacherConfig) -> None:
        super().__init__()
        c, k = config.channels, config.kernel
        self.register_buffer("mel_mean", torch.zeros(config.n_mels, 1))
        self.register_buffer("mel_std", torch.ones(config.n_mels, 1))
        self.inp = nn.Conv1d(config.n_mels, c, k, padding=k // 2)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.GELU(),
                nn.Dropout(config.dropout),
                nn.Conv1d(c, c, k, padding=d * (k // 2), dilation=d),
            )
            for d in config.dilations
        )
        self.out = nn.Sequential(nn.GELU(), nn.Conv1d(c, len(config.phones), 1))

    def forward(self, mel: Tensor) -> Tensor:
        h = self.inp((mel - self.mel_mean) / self.mel_std)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).transpose(1, 2)


def teacher_mel(wav: Tensor, config: PhoneTeacherConfig) -> Tensor:
    """wav [..., T] -> log mel [..., n_mels, ceil(T / hop)]; frame i is centred at (i + 0.5) * hop samples
    (the convention of `features_at` and of the phone labels)."""
    n = math.ceil(wav.shape[-1] / config.hop)
    shifted = F.pad(wav[..., config.hop // 2 :], (0, config.hop))
    return log_mel(shifted, config.sample_rate, config.n_fft, config.n_mels, config.hop)[..., :n]


class PhoneTeacher(Teacher):
    """Phone posteriors [T, n_phones] at `frame_rate` (100 Hz by default)."""

    def __init__(
        self, net: PhoneNet, config: PhoneTeacherConfig, name: str, info: dict | None = None
    ) -> None:
        self.net = net.eval()
        self.config = config
        self.name = name
        self.sample_rate = config.sample_rate
        self.frame_rate = config.frame_rate
        self.dim = len(config.phones)
        self.info = info or {}

    @classmethod
    def load(cls, directory: str | Path) -> PhoneTeacher:
        """A teacher written by `save`: teacher.json checked, the weights' sha256 checked, and the weights
        file confined to the directory (codecs/pretrained.py, shared with codecs and peers)."""
        directory = Path(directory)
        meta_path = directory / CONFIG_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{meta_path}: not a phone teacher ({err})") from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ValueError(f"{meta_path}: format {found!r} is not {FORMAT!r}")
        path, blob = checked_weights_file(directory, meta, config_file=CONFIG_FILE)
        try:
            config = PhoneTeacherConfig(**meta["config"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"{meta_path}: bad teacher config ({err})") from None
        net = PhoneNet(config)
        load_state_into(net, blob, path)
        teacher = cls(net, config, str(directory), info=meta)
        teacher._fingerprint = meta["weights_sha256"]
        return teacher

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        meta = {"format": FORMAT, "config": asdict(self.config), **(extra or {})}
        digest = write_weights_dir(directory, self.net.state_dict(), meta, config_file=CONFIG_FILE)
        self._fingerprint = digest
        self.info = {**meta, "weights_file": WEIGHTS_FILE, "weights_sha256": digest}
        return Path(directory)

    def fingerprint(self) -> str:
        fp = getattr(self, "_fingerprint", None)
        if fp is None:
            raise ValueError("an unsaved phone teacher has no fingerprint; save() it first")
        return fp

    @torch.no_grad()
    def item_features(self, wav: Tensor) -> Tensor:
        x = torch.from_numpy(normalise_loudness(wav.float().numpy()[None], self.config.target_db))[0]
        logits = self.net(teacher_mel(x, self.config)[None])[0]
        return logits.softmax(-1)


# -- training ------------------------------------------------------------------------------------------
@dataclass
class _Utterance:
    mel: Tensor  # [n_mels, T]
    labels: Tensor  # [T] phone indices


def aligned_items(manifest: str | Path) -> dict[str, list[tuple[Path, list[tuple[float, float, str]]]]]:
    """{"train": [(audio path, phones)], "validation": [...]} for the manifest rows with a `phones` sidecar."""
    manifest = Path(manifest)
    try:
        lines = manifest.read_text().splitlines()
    except OSError as err:
        raise ValueError(f"{manifest}: cannot read the manifest ({err})") from err
    out: dict[str, list] = {"train": [], "validation": []}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest}:{number}: not JSON ({err})") from err
        if not row.get("phones"):
            continue
        split = "validation" if row.get("split") == "validation" else "train"
        out[split].append((manifest.parent / row["path"], read_sidecar(manifest.parent / row["phones"])))
    if not out["train"] or not out["validation"]:
        raise ValueError(
            f"{manifest}: need phone-aligned items (a `phones` column) in both the train and validation splits; "
            "`codeclab corpus demo` writes them for its espeak-ng items"
        )
    return out


def _utterances(items, config: PhoneTeacherConfig, index: dict[str, int]) -> list[_Utterance]:
    out = []
    for path, phones in items:
        try:
            wav = load_audio(path, config.sample_rate, 1)
        except AudioError as err:
            log.warning("skipping %s: %s", path, err.reason)
            continue
        wav_t = torch.from_numpy(normalise_loudness(wav, config.target_db))[0]
        mel = teacher_mel(wav_t, config)
        labels = frame_labels(phones, config.frame_rate, mel.shape[-1])
        out.append(_Utterance(mel, torch.tensor([index.get(p, -100) for p in labels])))
    return out


def _batch(utts: list[_Utterance], frames: int, size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([u.mel.shape[-1] for u in utts], dtype=torch.float64)
    mels = torch.zeros(size, utts[0].mel.shape[0], frames)
    labels = torch.full((size, frames), -100, dtype=torch.long)
    for b in range(size):
        u = utts[int(torch.multinomial(lengths, 1, generator=gen))]
        start = int(torch.randint(0, max(1, u.mel.shape[-1] - frames + 1), (), generator=gen))
        piece = u.mel[:, start : start + frames]
        mels[b, :, : piece.shape[-1]] = piece
        labels[b, : piece.shape[-1]] = u.labels[start : start + frames]
    return mels, labels


@torch.no_grad()
def frame_accuracy(net: PhoneNet, utts: list[_Utterance]) -> float:
    net.eval()
    right = total = 0
    for u in utts:
        pred = net(u.mel[None])[0].argmax(-1)
        keep = u.labels >= 0
        right += int((pred[keep] == u.labels[keep]).sum())
        total += int(u.labels.numel())  # phones unseen in training count as errors
    return right / max(total, 1)


def train_phone_teacher(
    manifest: str | Path,
    out: str | Path,
    steps: int = 1500,
    batch_size: int = 16,
    seconds: float = 3.0,
    lr: float = 2e-3,
    seed: int = 0,
    config: PhoneTeacherConfig | None = None,
    log_every: int = 100,
    progress=None,
) -> PhoneTeacher:
    """Train on the manifest's phone-aligned `train` items; report frame accuracy on `validation`."""
    items = aligned_items(manifest)
    phones = sorted({p for _, segs in items["train"] for _, _, p in segs})
    config = config or PhoneTeacherConfig()
    config.phones = phones
    index = {p: i for i, p in enumerate(phones)}
    train, val = _utterances(items["train"], config, index), _utterances(items["validation"], config, index)
    if not train or not val:
        raise ValueError(f"{manifest}: no readable phone-aligned audio in one of the splits")
    torch.manual_seed(seed)
    net = PhoneNet(config)
    all_mel = torch.cat([u.mel for u in train], dim=-1)
    net.mel_mean.copy_(all_mel.mean(-1, keepdim=True))
    net.mel_std.copy_(all_mel.std(-1, keepdim=True).clamp_min(1e-3))
    counts = torch.bincount(torch.cat([u.labels for u in train]).clamp_min(0), minlength=len(phones))
    majority = float(counts.max() / counts.sum())
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    frames = int(round(seconds * config.frame_rate))
    history = []
    for step in range(steps):
        net.train()
        mels, labels = _batch(train, frames, batch_size, gen)
        loss = F.cross_entropy(net(mels).reshape(-1, len(phones)), labels.reshape(-1), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        if step % log_every == 0 or step == steps - 1:
            history.append({"step": step, "loss": value})
            log.info("phone teacher step %d: loss %.3f", step, value)
        if progress is not None:
            progress(step + 1, value)
    accuracy = frame_accuracy(net, val)
    teacher = PhoneTeacher(net.eval(), config, str(out))
    teacher.save(
        out,
        extra={
            "validation_accuracy": accuracy,
            "train_accuracy": frame_accuracy(net, train),
            "majority_baseline": majority,
            "train_items": len(train),
            "validation_items": len(val),
            "validation_frames": int(sum(u.labels.numel() for u in val)),
            "manifest": str(manifest),
            "steps": steps,
            "batch_size": batch_size,
            "seconds": seconds,
            "lr": lr,
            "seed": seed,
            "history": history,
        },
    )
    return teacher
