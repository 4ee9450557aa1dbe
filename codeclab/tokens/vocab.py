"""Audio vocabularies for language models: (codebook, code) <-> token id, special tokens, codebook patterns.

Id layout:

    [0, base_size)                          the base (text) vocabulary being extended, if any
    [base_size, base_size + S)              special tokens: pad, bos, eos, audio_start, audio_end, then one
                                            pad per codebook (audio_pad_0 ...) used by the delay pattern
    [audio_offset + q*K, audio_offset + (q+1)*K)   codes of codebook q (audio_offset = base_size + S)

Patterns turn codes [Q, T] into tokens and back, exactly:

    flatten       frame-major interleave, [Q*T]: t0q0 t0q1 ... t0q(Q-1) t1q0 ...
    coarse_first  codebook-major, [Q*T]: every frame of codebook 0, then codebook 1, ...
    parallel      [Q, T] (one stream per codebook, for models with Q heads)
    delay         [Q, T+Q-1] (MusicGen): stream q shifted right by q steps, padded with audio_pad_q

1-D patterns may be wrapped in audio_start ... audio_end (and bos / eos).

bos / eos / pad policy (one for every export and dataset): `roles` maps "pad", "bos", "eos" to the ids
that play them. A vocabulary built on a base tokenizer (`codeclab export hf-tokenizer`) takes the base's
own bos / eos / pad where it has them and the audio specials `<|bos|>` ... only where it lacks them;
without a base, the audio specials play every role. `pad_id`, `bos_id`, `eos_id`, `to_ids(bos=, eos=)`
and the LM datasets all use `roles`, and audio_vocab.json records them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from codeclab._checks import codes_out_of_range
from codeclab._files import atomic_write_json
from codeclab.tokens.roles import SpecialRoles

PATTERNS = ("flatten", "coarse_first", "parallel", "delay")
FLAT_PATTERNS = ("flatten", "coarse_first")
BASE_SPECIALS = ("pad", "bos", "eos", "audio_start", "audio_end")
FORMAT = "codeclab-audio-vocab"
ROLES = ("pad", "bos", "eos")


class VocabError(ValueError):
    """Tokens that do not form a valid sequence for the pattern, or an invalid vocabulary."""


@dataclass
class AudioVocab(SpecialRoles):
    """num_codebooks Q and codebook_size K of the codes; base_size: ids taken by a base vocabulary."""

    num_codebooks: int
    codebook_size: int
    base_size: int = 0
    token_format: str = "<|a{q}_{code}|>"
    special_format: str = "<|{name}|>"
    metadata: dict = field(default_factory=dict)
    roles: dict = field(default_factory=dict)  # "pad" / "bos" / "eos" -> id, where not the audio special

    def __post_init__(self) -> None:
        if self.num_codebooks < 1 or self.codebook_size < 1 or self.base_size < 0:
            raise VocabError(
                f"invalid vocabulary sizes Q={self.num_codebooks}, K={self.codebook_size}, base={self.base_size}"
            )
        self.special_names = list(BASE_SPECIALS) + [f"audio_pad_{q}" for q in range(self.num_codebooks)]
        self._special_ids = {name: self.base_size + i for i, name in enumerate(self.special_names)}
        for role, token_id in self.roles.items():
            if role not in ROLES:
                raise VocabError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
            if (
                isinstance(token_id, bool)
                or not isinstance(token_id, int)
                or not 0 <= token_id < self.base_size
            ):
                raise VocabError(
                    f"role {role!r} must be an id of the base vocabulary [0, {self.base_size}), got {token_id!r}"
                )

    # -- layout ----------------------------------------------------------------------------------
    @property
    def num_specials(self) -> int:
        return len(self.special_names)

    @property
    def audio_offset(self) -> int:
        return self.base_size + self.num_specials

    @property
    def size(self) -> int:
        """Total ids: base + specials + Q*K."""
        return self.audio_offset + self.num_codebooks * self.codebook_size

    def special(self, name: str) -> int:
        if name not in self._special_ids:
            raise KeyError(f"unknown special token {name!r}; known: {', '.join(self.special_names)}")
        return self._special_ids[name]

    def offset(self, q: int) -> int:
        return self.audio_offset + q * self.codebook_size

    def is_audio(self, ids: Tensor) -> Tensor:
        return (ids >= self.audio_offset) & (ids < self.size)

    def codebook_of(self, ids: Tensor) -> Tensor:
        """Codebook index of audio token ids (undefined for other ids)."""
        return (ids - self.audio_offset) // self.codebook_size

    def token_strings(self) -> list[str]:
        """Strings of the ids from base_size on (specials, then codes), in id order: for tokenizer export."""
        names = [self.special_format.format(name=name) for name in self.special_names]
        names += [
            self.token_format.format(q=q, code=c)
            for q in range(self.num_codebooks)
            for c in range(self.codebook_size)
        ]
        return names

    # -- codes -> tokens ---------------------------------------------------------------------------
    def _check_codes(self, codes: Tensor) -> Tensor:
        codes = torch.as_tensor(codes)
        if codes.ndim != 2:
            raise VocabError(f"codes must have shape [Q, T], got {tuple(codes.shape)}")
        if not 1 <= codes.shape[0] <= self.num_codebooks:
            raise VocabError(
                f"codes have {codes.shape[0]} codebooks; the vocabulary has {self.num_codebooks}"
            )
        if codes_out_of_range(codes, self.codebook_size) is not None:
            raise VocabError(f"codes must lie in [0, {self.codebook_size})")
        return codes.long()

    def to_ids(
        self,
        codes: Tensor,
        pattern: str = "flatten",
        markers: bool = False,
        bos: bool = False,
        eos: bool = False,
    ) -> Tensor:
        """codes [Q, T] -> token ids: [Q*T (+ markers)] for flat patterns, [Q, T'] for parallel / delay.

        markers: wrap in audio_start ... audio_end; bos / eos: add those (flat patterns only)."""
        codes = self._check_codes(codes)
        n_q, frames = codes.shape
        ids = codes + torch.tensor([self.offset(q) for q in range(n_q)], dtype=torch.long)[:, None]
        if pattern in ("parallel", "delay"):
            if markers or bos or eos:
                raise VocabError(f"markers, bos and eos apply to flat patterns, not {pattern!r}")
            if pattern == "parallel":
                return ids
            out = torch.empty(n_q, frames + n_q - 1, dtype=torch.long)
            for q in range(n_q):
                out[q] = self.special(f"audio_pad_{q}")
                out[q, q : q + frames] = ids[q]
            return out
        if pattern == "flatten":
            flat = ids.t().reshape(-1)
        elif pattern == "coarse_first":
            flat = ids.reshape(-1)
        else:
            raise VocabError(f"unknown pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
        parts = []
        if bos:
            parts.append(torch.tensor([self.bos_id]))
        if markers:
            parts.append(torch.tensor([self.special("audio_start")]))
        parts.append(flat)
        if markers:
            parts.append(torch.tensor([self.special("audio_end")]))
        if eos:
            parts.append(torch.tensor([self.eos_id]))
        return torch.cat(parts)

    # -- tokens -> codes ---------------------------------------------------------------------------
    def from_ids(self, tokens: Tensor, pattern: str = "flatten", n_q: int | None = None) -> Tensor:
        """Exact inverse of `to_ids`: token ids -> codes [Q, T]. Flat patterns ignore bos, eos, pad and the
        audio markers around the codes; anything else that is not a code of the expected codebook raises
        `VocabError`. n_q: codebooks in the sequence (flat patterns; default: all of the vocabulary's)."""
        tokens = torch.as_tensor(tokens).long()
        if pattern in ("parallel", "delay"):
            return self._decode_streams(tokens, pattern)
        if pattern not in FLAT_PATTERNS:
            raise VocabError(f"unknown pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
        if tokens.ndim != 1:
            raise VocabError(f"{pattern} tokens must be 1-D, got shape {tuple(tokens.shape)}")
        n_q = n_q or self.num_codebooks
        framing = torch.tensor(
            [self.role(r) for r in ROLES]
            + [self.special(name) for name in ("pad", "bos", "eos", "audio_start", "audio_end")]
        )
        audio = tokens[~torch.isin(tokens, framing)]
        if not bool(self.is_audio(audio).all()):
            raise VocabError("the sequence holds ids that are neither audio codes nor framing tokens")
        if audio.numel() % n_q:
            raise VocabError(f"{audio.numel()} audio tokens do not divide into {n_q} codebooks")
        frames = audio.numel() // n_q
        grid = audio.view(frames, n_q).t() if pattern == "flatten" else audio.view(n_q, frames)
        expected = torch.arange(n_q)[:, None].expand_as(grid)
        if not torch.equal(self.codebook_of(grid), expected):
            raise VocabError(f"tokens are not in {pattern} order for {n_q} codebooks")
        return grid - torch.tensor([self.offset(q) for q in range(n_q)])[:, None]

    def encode(self, *args, **kwargs) -> Tensor:
        """Deprecated name of `to_ids` (codecs encode audio; a vocabulary maps codes to ids)."""
        warnings.warn("AudioVocab.encode is now AudioVocab.to_ids", DeprecationWarning, stacklevel=2)
        return self.to_ids(*args, **kwargs)

    def decode(self, *args, **kwargs) -> Tensor:
        """Deprecated name of `from_ids`."""
        warnings.warn("AudioVocab.decode is now AudioVocab.from_ids", DeprecationWarning, stacklevel=2)
        return self.from_ids(*args, **kwargs)

    def _decode_streams(self, tokens: Tensor, pattern: str) -> Tensor:
        if tokens.ndim != 2 or not 1 <= tokens.shape[0] <= self.num_codebooks:
            raise VocabError(f"{pattern} tokens must have shape [Q, T], got {tuple(tokens.shape)}")
        n_q = tokens.shape[0]
        if pattern == "delay":
            frames = tokens.shape[1] - n_q + 1
            if frames < 0:
                raise VocabError("delay tokens are shorter than their codebook count")
            for q in range(n_q):
                pad = self.special(f"audio_pad_{q}")
                head, tail = tokens[q, :q], tokens[q, q + frames :]
                if not (bool((head == pad).all()) and bool((tail == pad).all())):
                    raise VocabError(f"stream {q} of a delay pattern must be padded with audio_pad_{q}")
            tokens = torch.stack([tokens[q, q : q + frames] for q in range(n_q)])
        offsets = torch.tensor([self.offset(q) for q in range(n_q)])[:, None]
        codes = tokens - offsets
        if codes_out_of_range(codes, self.codebook_size) is not None:
            raise VocabError(f"{pattern} stream q must hold codes of codebook q only")
        return codes

    # -- JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "base_size": self.base_size,
            "token_format": self.token_format,
            "special_format": self.special_format,
            "specials": {name: self.special(name) for name in self.special_names},
            "roles": {role: self.role(role) for role in ROLES},
            "audio_offset": self.audio_offset,
            "size": self.size,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AudioVocab:
        if data.get("format") != FORMAT:
            raise VocabError(f"not a codeclab audio vocabulary (format {data.get('format')!r})")
        vocab = cls(
            data["num_codebooks"],
            data["codebook_size"],
            data.get("base_size", 0),
            data.get("token_format", "<|a{q}_{code}|>"),
            data.get("special_format", "<|{name}|>"),
            data.get("metadata", {}),
            {
                role: token_id
                for role, token_id in (data.get("roles") or {}).items()
                if not (isinstance(token_id, int) and token_id == (data.get("specials") or {}).get(role))
            },
        )
        if data.get("size") not in (None, vocab.size) or data.get("audio_offset") not in (
            None,
            vocab.audio_offset,
        ):
            raise VocabError("the vocabulary's recorded layout does not match its sizes")
        return vocab

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> AudioVocab:
        """Read audio_vocab.json (or a directory holding one, such as an exported tokenizer's)."""
        path = Path(path)
        if path.is_dir():
            path = path / "audio_vocab.json"
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except OSError as err:
            raise VocabError(f"{path}: cannot read the vocabulary ({err.strerror or err})") from err
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise VocabError(f"{path}: not a valid codeclab audio vocabulary ({err})") from err

    @classmethod
    def for_store(cls, store, base_size: int = 0, n_q: int | None = None) -> AudioVocab:
        """The vocabulary of a `TokenStore` (optionally for its first n_q codebooks)."""
        meta = store.metadata
        return cls(
            n_q or int(meta["n_q"]),
            int(meta["codebook_size"]),
            base_size,
            metadata={"codec": meta["codec"], "frame_rate": meta["frame_rate"]},
        )
