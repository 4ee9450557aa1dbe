"""Training settings as a typed dataclass (saved as JSON in the run directory)."""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from codeclab._checks import FALSE_WORDS, TRUE_WORDS


@dataclass
class TrainConfig:
    # schedule
    steps: int = 100_000
    batch_size: int = 16
    segment_seconds: float = 1.0
    lr: float = 3e-4
    disc_lr: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.1  # cosine decay from lr to lr * min_lr_ratio after warm-up
    grad_clip: float = 1000.0
    max_seconds: float = 0.0  # > 0: end the run after this much wall time (checkpoint + final codec)
    # losses
    mel_weight: float = 15.0
    stft_weight: float = 0.0
    stft_start: int = 0  # steps before the multi-resolution STFT loss joins (mel first, then phase coherence)
    waveform_weight: float = 0.0
    adversarial: bool = True
    adversarial_start: int = 0  # steps of reconstruction-only training before the discriminators join
    adversarial_loss: str = "hinge"  # or "lsgan"
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    quantizer_weight: float = 1.0
    pitch_weight: float = (
        1.0  # cross-entropy of a "predicted"-pitch decoder's F0 codes (source-filter codecs)
    )
    phase_weight: float = 0.0  # anti-wrapping phase losses at 320/80 (`losses.PhaseLoss`)
    discriminators: list[str] = field(default_factory=lambda: ["mpd", "msstft"])
    disc_width: float = 1.0  # channel multiplier of the discriminators (smaller for quick runs)
    balancer: bool = (
        False  # EnCodec's gradient balancer over mel / stft / waveform / adversarial / feature losses
    )
    # codebook health: warn when a stage's EMA perplexity falls below this fraction of its codebook size
    min_perplexity_fraction: float = 0.05
    # machinery
    bf16: bool = True  # autocast on CUDA
    seed: int = 0
    num_workers: int = 2
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    validate_every: int = 1000
    val_items: int = 8
    val_seconds: float = 5.0
    val_fraction: float = 0.05
    # held-out audio scored at every validation (mel distance, STOI) for the learning curve: never
    # trained on, never used to choose anything during the run
    eval_data: list[str] = field(default_factory=list)
    eval_items: int = 16
    eval_seconds: float = 8.0
    samples_to_write: int = 4
    target_db: float = -20.0
    tensorboard: bool = False
    # semantic distillation (codecs whose config has `semantic`): where teacher features are cached;
    # empty = RUN_DIR/teacher-cache. Point several runs at one directory to run the teacher once.
    teacher_cache: str = ""
    # warm start: a codec weights directory (save_pretrained / RUN/codec / a bundled preset's) whose
    # tensors of the same name and shape are loaded before step 0 of a fresh run (never on --resume)
    init_from: str = ""
    init_skip: list[str] = field(default_factory=list)  # name prefixes the warm start leaves as initialised

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.segment_seconds <= 0:
            raise ValueError("steps, batch_size and segment_seconds must be positive")
        if self.adversarial_loss not in ("hinge", "lsgan"):
            raise ValueError(f"adversarial_loss must be 'hinge' or 'lsgan', got {self.adversarial_loss!r}")
        self.betas = tuple(self.betas)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    def with_overrides(self, overrides: dict[str, str]) -> TrainConfig:
        """Apply `key=value` strings (from the CLI's --set and recipes), each parsed by its field's type:
        booleans strictly (true/false, yes/no, on/off, 1/0), numbers as numbers, lists and tuples as
        comma-separated items (or JSON) of their element type. An unknown key or a value of the wrong
        type raises ValueError naming the key, the value and what it takes."""
        data = self.to_dict()
        hints = typing.get_type_hints(TrainConfig)
        for key, text in overrides.items():
            if key not in data:
                raise ValueError(f"unknown training setting {key!r}; known: {', '.join(sorted(data))}")
            data[key] = parse_setting(key, str(text), hints[key])
        return TrainConfig.from_dict(data)


def parse_setting(key: str, text: str, kind: Any) -> Any:
    """One `--set key=text` value parsed as type `kind` (bool, int, float, str, list[T], tuple[T, ...]).

    Owned rather than taken from a library (pydantic, cattrs): the types come from TrainConfig's plain
    dataclass annotations, every error must name the `--set` key and say what it takes, booleans are the
    words of `codeclab._checks` only (`ture` is refused), and a tuple's length is checked. These 40 lines
    do that without adding a validation library the config otherwise does not need."""
    import json

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (list, tuple):
        items = (
            json.loads(text)
            if text.strip().startswith("[")
            else [t.strip() for t in text.split(",") if t.strip()]
        )
        element = args[0] if args else str
        values = [parse_setting(key, str(item), element) for item in items]
        if origin is tuple and args and args[-1] is not Ellipsis and len(values) != len(args):
            raise ValueError(
                f"--set {key}={text}: takes {len(args)} comma-separated values, got {len(values)}"
            )
        return tuple(values) if origin is tuple else values
    word = text.strip().lower()
    if kind is bool:
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"--set {key}={text}: takes true or false")
    if kind in (int, float):
        try:
            number = float(text)
        except ValueError:
            raise ValueError(
                f"--set {key}={text}: takes {'an integer' if kind is int else 'a number'}"
            ) from None
        if kind is int:
            if not number.is_integer():
                raise ValueError(f"--set {key}={text}: takes an integer")
            return int(number)
        return number
    return text
