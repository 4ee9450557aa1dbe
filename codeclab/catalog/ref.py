"""One way to name a codec in text, parsed here for every command (and, by position, for teachers).

    NAME or DIR               a registry name, or a directory written by save_pretrained
    NAME@WEIGHTS              a registry name with weights from a directory
    ...:N                     keep N codebooks (n_q); N+M+... for a sweep (benchmarks)
    ...:key=value,...         options: n_q, random_init, seed, weights, device, bitrate, mode, sample_rate
    ...:N,key=value           both

Examples: `codeclab-16k-speech`, `codeclab-16k-speech:4`, `codeclab-16k-speech@runs/a/codec:2+8`,
`opus:bitrate=6000`, `runs/a/codec`, `codeclab-tiny:random_init=true,seed=3`. A teacher spec has the same
shape, `SOURCE:LAYER` (`hubert-dir:9`, `hubert-dir:avg`): the bare value after the colon is the layer.
A text that is an existing path is a directory, whatever characters it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    import torch

    from codeclab.codecs.base import AudioCodec
    from codeclab.codecs.roundtrip import RoundTripCodec

INT_OPTIONS = ("seed", "bitrate", "mode", "sample_rate")
TEXT_OPTIONS = ("weights", "device")
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")


def split_ref(text: str) -> tuple[str, str | None, str]:
    """`NAME[@WEIGHTS][:TAIL]` -> (NAME or DIR, WEIGHTS or None, TAIL or ""). An existing path is taken
    whole, and so is the longest existing path before a colon (directories may hold colons)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a codec or teacher reference must be a non-empty string, got {text!r}")
    if Path(text).exists():
        return text, None, ""
    head, sep, tail = text.rpartition(":")
    if sep and Path(head).exists():
        return head, None, tail
    target, _, tail = text.partition(":")
    name, at, weights = target.partition("@")
    if at and (not name or not weights):
        raise ValueError(f"{text!r}: write NAME@WEIGHTS with both parts")
    return name, (weights if at else None), tail


def _n_q(value: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in value.split("+")]
    except ValueError:
        raise ValueError(f"{text!r}: n_q must be an integer or integers joined by +, got {value!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"{text!r}: n_q must be positive, got {value!r}")
    return values


@dataclass(frozen=True)
class CodecRef:
    """A parsed codec reference. `options` holds what is not one of the named fields (device, and the
    classic codecs' bitrate, mode, sample_rate); `text` is what it was parsed from (labels results)."""

    name: str
    weights: str | None = None
    n_q: list[int] | None = None
    random_init: bool = False
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def parse(cls, text: str, random_init_default: bool = False) -> CodecRef:
        """Parse `text` (module docstring). `random_init_default`: a codec given no weights is random-init
        unless the text says `random_init=false` (benchmarks of untrained codecs)."""
        name, weights, tail = split_ref(text)
        n_q: list[int] | None = None
        random_init: bool | None = None
        seed = 0
        options: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in tail.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                if n_q is not None:
                    raise ValueError(f"{text!r}: n_q given twice")
                n_q = _n_q(part, text)
                continue
            key, value = key.strip(), value.strip()
            if key == "n_q":
                if n_q is not None:
                    raise ValueError(f"{text!r}: n_q given twice")
                n_q = _n_q(value, text)
            elif key == "random_init":
                if value.lower() not in TRUE + FALSE:
                    raise ValueError(f"{text!r}: random_init must be true or false, got {value!r}")
                random_init = value.lower() in TRUE
            elif key == "weights":
                if weights is not None:
                    raise ValueError(f"{text!r}: weights given twice (@ and weights=)")
                weights = value
            elif key in INT_OPTIONS:
                try:
                    number = int(value)
                except ValueError:
                    raise ValueError(f"{text!r}: {key} must be an integer, got {value!r}") from None
                if key == "seed":
                    seed = number
                else:
                    options[key] = number
            elif key in TEXT_OPTIONS:
                options[key] = value
            else:
                known = ", ".join(("n_q", "random_init", "weights", *INT_OPTIONS, "device"))
                raise ValueError(f"unknown codec option {key!r} in {text!r} (known: {known})")
        if random_init is None:
            random_init = random_init_default and weights is None and not Path(name).is_dir()
        return cls(name, weights, n_q, random_init, seed, options, text)

    def with_flags(
        self,
        weights: str | None = None,
        random_init: bool = False,
        seed: int = 0,
        n_q: int | None = None,
    ) -> CodecRef:
        """This reference with a command's separate flags folded in (`--weights`, `--random-init`,
        `--seed`, `--n-q`); a flag that contradicts the text raises ValueError naming both."""
        if weights is not None and self.weights not in (None, weights):
            raise ValueError(f"--weights {weights} contradicts {self.text!r}")
        if seed and self.seed not in (0, seed):
            raise ValueError(f"--seed {seed} contradicts {self.text!r}")
        if n_q is not None and self.n_q not in (None, [n_q]):
            raise ValueError(f"--n-q {n_q} contradicts {self.text!r}")
        return replace(
            self,
            weights=weights if weights is not None else self.weights,
            random_init=self.random_init or random_init,
            seed=seed or self.seed,
            n_q=[n_q] if n_q is not None else self.n_q,
        )

    def single_n_q(self) -> int | None:
        """The one n_q a command that encodes once takes (None: all codebooks)."""
        if self.n_q is None:
            return None
        if len(self.n_q) != 1:
            raise ValueError(
                f"{self.text!r}: this command takes one n_q, not a sweep ({'+'.join(map(str, self.n_q))})"
            )
        return self.n_q[0]

    def spec(self) -> CodecRef:
        """What stores and .clab files record of this codec (name, weights, random_init, seed): this
        reference without its n_q and options."""
        return replace(self, n_q=None, options={})

    @overload
    def load(
        self, device: str | torch.device | None = None, roundtrip: Literal[False] = False
    ) -> AudioCodec: ...

    @overload
    def load(
        self, device: str | torch.device | None = None, roundtrip: bool = ...
    ) -> AudioCodec | RoundTripCodec: ...

    def load(
        self, device: str | torch.device | None = None, roundtrip: bool = False
    ) -> AudioCodec | RoundTripCodec:
        """The codec this names (`load_codec`). roundtrip: also accept a round-trip codec (Opus, Codec 2:
        benchmarks compare both kinds); otherwise one of those raises ValueError."""
        from codeclab.catalog.loading import load_codec

        options = dict(self.options)
        if device is not None:
            options["device"] = device
        if self.random_init and self.seed:
            options["seed"] = self.seed
        return load_codec(
            self.name, weights=self.weights, random_init=self.random_init, roundtrip=roundtrip, **options
        )

    def to_dict(self) -> dict[str, Any]:
        """The record stores and .clab headers keep: name, weights, random_init, seed (paths absolute)."""
        data: dict[str, Any] = {
            "name": self.name,
            "weights": self.weights,
            "random_init": self.random_init,
            "seed": self.seed,
        }
        if Path(self.name).is_dir():
            data["name"] = str(Path(self.name).resolve())
        if self.weights is not None and Path(self.weights).exists():
            data["weights"] = str(Path(self.weights).resolve())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecRef:
        """The reference a store or .clab file recorded; fields of the wrong type raise ValueError."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            raise ValueError(f"a codec record needs a 'name' string, got {data!r}")
        weights, random_init, seed = data.get("weights"), data.get("random_init", False), data.get("seed", 0)
        if weights is not None and not isinstance(weights, str):
            raise ValueError(f"the codec record's 'weights' must be a string, got {weights!r}")
        if not isinstance(random_init, bool):
            raise ValueError(f"the codec record's 'random_init' must be true or false, got {random_init!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"the codec record's 'seed' must be an integer, got {seed!r}")
        return cls(name=data["name"], weights=weights, random_init=random_init, seed=seed)

    def series(self) -> str:
        """The curve this codec belongs to in a plot: the name and the options that change the codec,
        without those that only move it along the bitrate axis (n_q, bitrate, mode)."""
        kept = [f"{k}={v}" for k, v in sorted(self.options.items()) if k not in ("bitrate", "mode")]
        if self.weights is not None:
            kept.insert(0, f"weights={self.weights}")
        return self.name + (":" + ",".join(kept) if kept else "")


# `CodecSpec` (how stores named a codec) and `CodecRef` (how commands parsed one) were one idea in two
# types; `CodecRef` is now both. The old name stays for one release (CHANGELOG, Unreleased).
CodecSpec = CodecRef
