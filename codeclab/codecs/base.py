"""The codec contract every codec in codeclab obeys, ours and peers alike.

    enc = codec.encode(wav [B, C, T], lengths=None, n_q=None)  -> Encoded(codes [B, n_q, F] int64, lengths [B])
    wav_hat = codec.decode(enc)                                 -> [B, C, T'], zero past each item's length

`lengths` are part of the contract: a zero-padded batch gives every item exactly the codes it gets alone.
Audio is at `codec.sample_rate` unless `encode(..., sample_rate=R)` says otherwise (then it is resampled,
or refused with `resample=False`).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from codeclab._checks import check_n_q, codes_out_of_range

if TYPE_CHECKING:
    from codeclab.codecs.streaming import CodecStream, Latency
    from codeclab.tokens.entropy import EntropyModel


@dataclass
class Encoded:
    """Codes of a batch.

    codes: [B, n_q, F] int64; frames at or past `lengths[b]` are padding (zeros).
    lengths: [B] int64 valid frames per item.
    audio_lengths: [B] int64 samples of each input (None when unknown, e.g. codes read from a store);
    decode trims its output to them.
    """

    codes: Tensor
    lengths: Tensor
    audio_lengths: Tensor | None = None

    def __post_init__(self) -> None:
        if self.codes.ndim != 3:
            raise ValueError(f"codes must have shape [B, n_q, F], got {tuple(self.codes.shape)}")
        if self.lengths.shape != (self.codes.shape[0],):
            raise ValueError(
                f"lengths must have shape [{self.codes.shape[0]}], got {tuple(self.lengths.shape)}"
            )
        if self.audio_lengths is not None and self.audio_lengths.shape != self.lengths.shape:
            raise ValueError("audio_lengths must have the same shape as lengths")
        batch, _, frames = self.codes.shape
        if batch == 0 or frames == 0 or self.codes.shape[1] == 0:
            raise ValueError(f"codes [B, n_q, F] must not be empty, got {tuple(self.codes.shape)}")
        for name, value in (
            ("codes", self.codes),
            ("lengths", self.lengths),
            ("audio_lengths", self.audio_lengths),
        ):
            if value is not None and (
                value.is_floating_point() or value.is_complex() or value.dtype == torch.bool
            ):
                raise ValueError(f"{name} must be an integer tensor, got {value.dtype}")
        if int(self.lengths.min()) < 1 or int(self.lengths.max()) > frames:
            raise ValueError(
                f"lengths must lie in [1, {frames}] (the frames of codes), got {self.lengths.tolist()}"
            )
        if self.audio_lengths is not None and int(self.audio_lengths.min()) < 1:
            raise ValueError(f"audio_lengths must be positive, got {self.audio_lengths.tolist()}")

    @property
    def n_q(self) -> int:
        return self.codes.shape[1]

    @property
    def batch_size(self) -> int:
        return self.codes.shape[0]

    def to(self, device: torch.device | str) -> Encoded:
        audio = None if self.audio_lengths is None else self.audio_lengths.to(device)
        return Encoded(self.codes.to(device), self.lengths.to(device), audio)

    def items(self) -> list[Tensor]:
        """Per-item codes without padding: a list of [n_q, F_b] tensors."""
        return [self.codes[b, :, : int(self.lengths[b])] for b in range(self.batch_size)]

    @classmethod
    def from_items(cls, items: list[Tensor], audio_lengths: list[int] | None = None) -> Encoded:
        """Pad per-item codes [n_q, F_b] into one batch."""
        if not items:
            raise ValueError("no items to batch")
        n_q = items[0].shape[0]
        if any(item.ndim != 2 or item.shape[0] != n_q for item in items):
            raise ValueError("every item must have shape [n_q, F] with the same n_q")
        frames = max(item.shape[1] for item in items)
        codes = torch.zeros(len(items), n_q, frames, dtype=torch.long, device=items[0].device)
        for b, item in enumerate(items):
            codes[b, :, : item.shape[1]] = item.long()
        lengths = torch.tensor([item.shape[1] for item in items], dtype=torch.long, device=codes.device)
        audio = (
            None
            if audio_lengths is None
            else torch.tensor(audio_lengths, dtype=torch.long, device=codes.device)
        )
        return cls(codes, lengths, audio)


def check_audio(wav: Tensor, lengths: Tensor | list[int] | None, channels: int) -> tuple[Tensor, Tensor]:
    """Validate a batch of audio and its lengths; raise `ValueError` naming the problem.

    wav: [B, C, T] floating point, finite. lengths: [B] integers in 1..T (None means all T).
    Returns (wav, lengths as int64 on wav's device).
    """
    if not isinstance(wav, Tensor):
        raise ValueError(f"audio must be a torch.Tensor of shape [B, C, T], got {type(wav).__name__}")
    if wav.ndim != 3:
        hint = " (add a batch dimension: wav[None])" if wav.ndim == 2 else ""
        raise ValueError(
            f"audio must have shape [B, C, T], got rank {wav.ndim} with shape {tuple(wav.shape)}{hint}"
        )
    if not wav.dtype.is_floating_point:
        raise ValueError(f"audio must be floating point in [-1, 1], got dtype {wav.dtype}")
    b, c, t = wav.shape
    if c != channels:
        raise ValueError(f"this codec takes {channels} channel(s), got audio with {c} channels")
    if b == 0 or t == 0:
        raise ValueError(f"empty audio: shape {tuple(wav.shape)}")
    finite = torch.isfinite(wav).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = [i for i, ok in enumerate(finite.tolist()) if not ok]
        raise ValueError(f"audio contains NaN or inf samples (batch items {bad})")
    if lengths is None:
        return wav, torch.full((b,), t, dtype=torch.long, device=wav.device)
    try:
        lengths = torch.as_tensor(lengths, device=wav.device)
    except (TypeError, RuntimeError, ValueError) as err:
        raise ValueError(
            f"lengths must be a sequence or tensor of integers, got {lengths!r} ({err})"
        ) from None
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.dtype.is_complex:
        raise ValueError(f"lengths must be integers, got {lengths.dtype}")
    if lengths.shape != (b,):
        raise ValueError(f"lengths must have shape [{b}], got {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > t).any()):
        raise ValueError(f"lengths must lie in 1..{t} (the padded length), got {lengths.tolist()}")
    return wav, lengths.long()


class SampleRateMismatch(ValueError):
    """Audio at one rate given to a codec of another, with resampling turned off."""


class WeightsNeeded(ValueError):
    """A codec asked for without weights and without random_init. `cli_message` says the same in the
    command line's words (--weights, --random-init)."""

    def __init__(self, message: str, cli_message: str) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class UnsupportedDtype(TypeError):
    """A codec moved to a floating type (`codec.to(torch.bfloat16)`) that it cannot compute in."""


class LongFileStreamer(Protocol):
    """A causal model's own streaming state over one long file: `encode(x [C, n])`, n a whole number of
    frames, gives those frames' codes [n_q, n / hop], equal to a whole pass's (to float rounding)."""

    def encode(self, x: Tensor) -> Tensor: ...


class AudioCodec(ABC):
    """What every codec offers. Properties describe the token stream; `encode` / `decode` move between
    audio and codes. `device` and `provenance()` say where it runs and what it is, so callers never guess.
    Subclasses implement `_encode` (audio already at the codec's rate) and `decode`."""

    name: str = "codec"
    random_init: bool = False  # True for an untrained codec (load_codec(..., random_init=True))
    weights_sha256: str | None = None  # sha256 of the weights file it was loaded from, when known
    entropy_record: dict | None = None  # config.json's "entropy_model" of the weights loaded, if any
    # gives that model (codecs/pretrained.attach_entropy_model): (codebook_size, num_codebooks, name) -> model
    entropy_source: Callable[[int, int, str], EntropyModel] | None = None

    def entropy_model(self) -> EntropyModel | None:
        """The code probability model that ships with the weights (`entropy.safetensors`, recorded in
        config.json with its sha256), used to range code `.clab` files; None when the weights have none.
        A file whose tables do not match the recorded sha256 raises ValueError naming it."""
        if self.entropy_source is None:
            return None
        return self.entropy_source(self.codebook_size, self.num_codebooks, self.name)

    @property
    def device(self) -> torch.device:
        """Where encode and decode run (codecs with parameters report theirs)."""
        return torch.device("cpu")

    def provenance(self) -> dict:
        """Deprecated: `codeclab.catalog.fingerprint.codec_facts(codec)` (the contract does no hashing)."""
        warnings.warn(
            "AudioCodec.provenance() is deprecated; use codeclab.catalog.fingerprint.codec_facts(codec)",
            DeprecationWarning,
            stacklevel=2,
        )
        from codeclab.catalog.fingerprint import codec_facts  # deprecated shim (tests/test_layers.py)

        return codec_facts(self)

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def channels(self) -> int: ...

    @property
    @abstractmethod
    def hop_length(self) -> int:
        """Samples per frame."""

    @property
    @abstractmethod
    def num_codebooks(self) -> int: ...

    @property
    @abstractmethod
    def codebook_size(self) -> int: ...

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def bitrate(self, n_q: int | None = None) -> float:
        """Nominal bits per second with `n_q` codebooks (all by default)."""
        n_q = self.num_codebooks if n_q is None else n_q
        return n_q * math.log2(self.codebook_size) * self.frame_rate

    def check_n_q(self, n_q: int | None) -> int:
        """Resolve `n_q` (None = all codebooks; numpy integers welcome) or raise a clear ValueError."""
        return check_n_q(n_q, self.num_codebooks)

    def checked(self, encoded: Encoded | Tensor) -> Encoded:
        """`encoded` (or a codes tensor [B, n_q, F]) checked against this codec before decoding: n_q
        within its codebooks, codes within [0, codebook_size), audio lengths the frames can hold."""
        encoded = as_encoded(encoded)
        if encoded.n_q > self.num_codebooks:
            raise ValueError(f"codes have {encoded.n_q} codebooks; {self.name} has {self.num_codebooks}")
        outside = codes_out_of_range(encoded.codes, self.codebook_size)
        if outside is not None:
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size}), got values from {outside[0]} to {outside[1]}"
            )
        if encoded.audio_lengths is not None:
            room = (encoded.lengths.to(encoded.audio_lengths.device) + 1) * self.hop_length
            if bool((encoded.audio_lengths > room).any()):
                raise ValueError(
                    f"audio_lengths {encoded.audio_lengths.tolist()} exceed what {encoded.lengths.tolist()} "
                    f"frames of {self.hop_length} samples hold"
                )
        return encoded

    def frames_for(self, lengths: Tensor) -> Tensor:
        """Frames produced for inputs of `lengths` samples: ceil(length / hop)."""
        return (lengths + self.hop_length - 1) // self.hop_length

    def encode(
        self,
        wav: Tensor,
        lengths: Tensor | None = None,
        n_q: int | None = None,
        *,
        sample_rate: int | None = None,
        resample: bool = True,
    ) -> Encoded:
        """wav [B, C, T] float in [-1, 1] -> Encoded(codes [B, n_q, F] int64, lengths [B] frames,
        audio_lengths [B] samples at the codec's rate).

        sample_rate: the rate of `wav`. When given and not `self.sample_rate`, each item is resampled
        with soxr (HQ) first, or, with `resample=False`, refused with `SampleRateMismatch`. When not
        given, `wav` is taken to be at `self.sample_rate`: nothing can check it, so pass it whenever the
        audio comes from elsewhere. `decode` returns audio at `self.sample_rate`."""
        if sample_rate is not None:
            wav, lengths = self.at_codec_rate(wav, lengths, sample_rate, resample)
        return self._encode(wav, lengths, n_q)

    def at_codec_rate(
        self, wav: Tensor, lengths: Tensor | None, sample_rate: int, resample: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """(wav [B, C, T], lengths) at `sample_rate` -> the same at `self.sample_rate` (see `encode`)."""
        if (
            isinstance(sample_rate, bool)
            or int(sample_rate) != sample_rate
            or not 1000 <= sample_rate <= 768000
        ):
            raise ValueError(
                f"sample_rate must be an integer from 1000 to 768000 Hz (as audio files are read), got {sample_rate!r}"
            )
        if int(sample_rate) == self.sample_rate:
            return wav, lengths
        if not resample:
            raise SampleRateMismatch(
                f"{self.name} codes {self.sample_rate} Hz audio, got {int(sample_rate)} Hz: resample it "
                "first, or call encode(..., sample_rate=...) with resample=True"
            )
        from codeclab.audio.io import resample_batch

        wav, lengths = check_audio(wav, lengths, self.channels)
        return resample_batch(wav, lengths, int(sample_rate), self.sample_rate)

    @abstractmethod
    def _encode(self, wav: Tensor, lengths: Tensor | None, n_q: int | None) -> Encoded:
        """wav [B, C, T] at `self.sample_rate` -> Encoded(codes [B, n_q, F], lengths [B])."""

    @abstractmethod
    def decode(self, encoded: Encoded | Tensor) -> Tensor:
        """Encoded (or codes [B, n_q, F]) -> wav [B, C, T'], zero past each item's length."""

    def encoder_context(self) -> tuple[int, int] | None:
        """Samples (before, after) of input that one frame's codes depend on, when bounded; None when
        not known. A known context lets long files be encoded in chunks with exactly the codes of a
        whole pass (`codeclab.codecs.chunked`)."""
        return None

    def long_file_context(self) -> tuple[int, int] | None:
        """Samples (before, after) that a chunked encode of a long file carries around each chunk
        (`codeclab.codecs.chunked.encode_stream`, `codeclab tokenize` over --long-seconds): the encoder's
        own context, so chunked codes equal a whole pass. A peer whose context is unbounded states a
        window instead (`long_file_exact` is then False, and codes near chunk edges may differ; the
        measured agreement is in docs/peers.md). None: long files are encoded whole."""
        return self.encoder_context()

    def long_file_streamer(self, n_q: int | None = None) -> LongFileStreamer | None:
        """A fresh streaming state that encodes a long file piece by piece with a whole pass's codes (Mimi's
        own caches), preferred by `chunked.encode_stream` to the `long_file_context` window; None here."""
        return None

    @property
    def long_file_exact(self) -> bool:
        """True when a chunked encode gives a whole pass's codes: through `long_file_streamer`, or with
        `long_file_context` equal to the encoder's exact context."""
        context = self.long_file_context()
        exact_window = context is not None and context == self.encoder_context()
        return exact_window or self.long_file_streamer() is not None

    def decoder_context(self) -> tuple[int, int] | None:
        """Code frames (before, after) that one frame of decoded audio depends on, when bounded; None when
        not known. A known context lets long items be decoded in chunks (`codeclab.codecs.chunked`)."""
        return None

    @property
    def latency(self) -> Latency | None:
        """Algorithmic latency of a stream through this codec (ms), or None when it cannot stream."""
        return None

    def streaming(self, batch_size: int = 1, n_q: int | None = None) -> AbstractContextManager[CodecStream]:
        """`with codec.streaming(batch_size) as stream:` (docs/streaming.md). Codecs without a streaming
        state raise `StreamingUnsupported` naming the codec and why."""
        from codeclab.codecs.modules.state import StreamingUnsupported

        raise StreamingUnsupported(
            f"{self.name} cannot stream: only causal codeclab codecs keep a streaming state "
            "(see `codeclab list`); encode and decode whole files with it"
        )

    # -- saving and loading ----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write this codec to `directory` so that `load_codec(directory)` (or `from_pretrained`) rebuilds
        it: safetensors weights, a config.json with their sha256. Returns the directory."""
        raise NotImplementedError(f"{self.name} ({type(self).__name__}) cannot be saved")

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path, **options: Any) -> AudioCodec:
        """Deprecated on `AudioCodec` itself: `codeclab.load_codec(name_or_dir)`. Concrete classes load
        their own directories (`NeuralCodec.from_pretrained(DIR)`, a peer's class likewise)."""
        warnings.warn(
            "AudioCodec.from_pretrained is deprecated; use codeclab.load_codec (or the concrete class's "
            "from_pretrained)",
            DeprecationWarning,
            stacklevel=2,
        )
        from codeclab.catalog.loading import load_codec  # deprecated shim (tests/test_layers.py)

        codec = load_codec(name_or_dir, **options)
        if not isinstance(codec, cls):
            raise TypeError(f"{name_or_dir} holds a {type(codec).__name__}, not a {cls.__name__}")
        return codec

    def decode_lengths(self, encoded: Encoded) -> Tensor:
        """Samples of each decoded item: its input length when known, else frames x hop."""
        if encoded.audio_lengths is not None:
            return encoded.audio_lengths
        return encoded.lengths * self.hop_length

    def describe(self) -> dict:
        """Plain facts about the token stream, for reports and stores."""
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "bitrate": self.bitrate(),
        }


def as_encoded(encoded: Encoded | Tensor) -> Encoded:
    """Accept an `Encoded` or a bare codes tensor [B, n_q, F] (every frame valid)."""
    if isinstance(encoded, Encoded):
        return encoded
    if isinstance(encoded, Tensor):
        if encoded.ndim != 3:
            raise ValueError(f"codes must have shape [B, n_q, F], got {tuple(encoded.shape)}")
        if encoded.dtype not in (torch.int16, torch.int32, torch.int64):
            raise ValueError(f"codes must be int16, int32 or int64, got {encoded.dtype}")
        lengths = torch.full((encoded.shape[0],), encoded.shape[2], dtype=torch.long, device=encoded.device)
        return Encoded(encoded, lengths)
    raise ValueError(f"expected Encoded or a codes tensor, got {type(encoded).__name__}")
