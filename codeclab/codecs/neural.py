"""NeuralCodec: encoder -> quantizer -> decoder, composed by injection and built from a typed config."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.base import AudioCodec, Encoded, check_audio
from codeclab.codecs.modules.bottleneck import BottleneckConfig, BottleneckDecoder, BottleneckEncoder
from codeclab.codecs.modules.conv import mask_tail, receptive_field
from codeclab.codecs.modules.istft import ISTFTDecoder, ISTFTDecoderConfig
from codeclab.codecs.modules.numerics import MIN_FRAMES, exact_numerics
from codeclab.codecs.modules.pitch import PitchConfig, PitchTracker
from codeclab.codecs.modules.seanet import SEANetConfig, SEANetDecoder, SEANetEncoder
from codeclab.codecs.modules.source_filter import SourceFilterDecoder, SourceFilterDecoderConfig
from codeclab.codecs.semantic import SemanticConfig, SemanticHead
from codeclab.codecs.streaming import CodecStream, Latency, codec_latency
from codeclab.quantizers import (
    Quantizer,
    QuantizerConfig,
    QuantizerOutput,
    RVQConfig,
    SplitConfig,
    build_quantizer,
    quantizer_config,
)


def quantizer_kind(config: QuantizerConfig) -> str:
    """Registry name of a quantizer config instance ("rvq", "fsq", ...)."""
    return config.kind


# decoder kind -> (config class, module class); "seanet" is the default of configs that name none
DECODERS: dict[str, tuple[type, type]] = {
    "seanet": (SEANetConfig, SEANetDecoder),
    "istft": (ISTFTDecoderConfig, ISTFTDecoder),
    "source_filter": (SourceFilterDecoderConfig, SourceFilterDecoder),
}


def decoder_kind(config: Any) -> str:
    """Registry name of a decoder config instance ("seanet", "istft")."""
    for kind, (config_cls, _) in DECODERS.items():
        if type(config) is config_cls:
            return kind
    raise ValueError(f"{type(config).__name__} is not a known decoder config")


@dataclass
class CodecConfig:
    """Everything needed to rebuild a NeuralCodec; saved as JSON beside the weights. `semantic`, when set,
    adds a training-only distillation head and records how the codec was distilled. `bottleneck`, when
    set, lowers the frame rate by its stride with a transformer on each side of the quantizer
    (`modules.bottleneck`); encoder and decoder then run at `stride` times the codes' frame rate.
    `pitch` goes with a source-filter decoder: how F0 reaches it (a codebook of the codes, or predicted)."""

    sample_rate: int = 16000
    encoder: SEANetConfig = field(default_factory=SEANetConfig)
    decoder: SEANetConfig | ISTFTDecoderConfig | SourceFilterDecoderConfig = field(
        default_factory=SEANetConfig
    )
    quantizer: QuantizerConfig = field(default_factory=RVQConfig)
    semantic: SemanticConfig | None = None
    bottleneck: BottleneckConfig | None = None
    pitch: PitchConfig | None = None

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(self, {"sample_rate": (1, 768000)})
        enc, dec = self.encoder, self.decoder
        if isinstance(dec, SEANetConfig) and list(enc.ratios) != list(dec.ratios):
            raise ValueError(f"encoder ratios {enc.ratios} and decoder ratios {dec.ratios} differ")
        if enc.hop_length != dec.hop_length:
            raise ValueError(f"encoder hop {enc.hop_length} and decoder hop {dec.hop_length} differ")
        if enc.channels != dec.channels:
            raise ValueError("encoder and decoder disagree on the number of audio channels")
        if not enc.dimension == dec.dimension == self.quantizer.dim:
            raise ValueError(
                f"latent sizes differ: encoder {enc.dimension}, quantizer {self.quantizer.dim}, decoder {dec.dimension}"
            )
        if self.sample_rate < 1:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        source_filter = isinstance(dec, SourceFilterDecoderConfig) and dec.head == "source_filter"
        if source_filter != (self.pitch is not None):
            raise ValueError("a source-filter decoder head and a pitch config go together")
        if isinstance(dec, SourceFilterDecoderConfig):
            if dec.sample_rate != self.sample_rate or self.bottleneck is not None:
                raise ValueError("the source-filter decoder needs the codec's sample rate and no bottleneck")
        if self.pitch is not None:
            if self.pitch.sent and self.pitch.index > self.quantizer.num_codebooks:
                raise ValueError(f"pitch index {self.pitch.index} is past the quantizer's codebooks")
        if self.semantic is not None:
            kind = quantizer_kind(self.quantizer)
            if kind not in ("vq", "rvq", "split"):
                raise ValueError(f"semantic distillation needs a vq, rvq or split quantizer, not {kind}")
            if (kind == "split") != (self.semantic.loss == "split"):
                raise ValueError(
                    "the split recipe and the split quantizer go together (semantic loss 'split')"
                )
            if self.semantic.codebooks > self.quantizer.num_codebooks:
                raise ValueError(
                    f"the semantic head reads {self.semantic.codebooks} codebooks; the quantizer has "
                    f"{self.quantizer.num_codebooks}"
                )

    @property
    def hop_length(self) -> int:
        """Samples per frame of codes (the encoder's hop, times the bottleneck's stride)."""
        stride = self.bottleneck.stride if self.bottleneck is not None else 1
        return self.encoder.hop_length * stride

    @property
    def causal(self) -> bool:
        return self.encoder.causal and self.decoder.causal

    @property
    def num_codebooks(self) -> int:
        """Codebooks of the codes: the quantizer's, plus one that carries F0 (pitch mode "sent")."""
        sent = self.pitch is not None and self.pitch.sent
        return self.quantizer.num_codebooks + (1 if sent else 0)

    def with_semantic(self, semantic: SemanticConfig | None) -> CodecConfig:
        """A copy distilled with `semantic` (None removes it). The "split" recipe turns an RVQ into a split
        quantizer with the same settings and number of codebooks (so the same bitrate)."""
        quantizer = self.quantizer
        if semantic is not None and semantic.loss == "split" and type(quantizer) is RVQConfig:
            quantizer = SplitConfig(**asdict(quantizer))
        if semantic is None and type(quantizer) is SplitConfig:
            quantizer = RVQConfig(**asdict(quantizer))
        return replace(self, quantizer=quantizer, semantic=semantic)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "sample_rate": self.sample_rate,
            "encoder": asdict(self.encoder),
            "decoder": asdict(self.decoder),
            "decoder_kind": decoder_kind(self.decoder),
            "quantizer": {"kind": quantizer_kind(self.quantizer), "params": asdict(self.quantizer)},
        }
        if self.semantic is not None:
            data["semantic"] = asdict(self.semantic)
        if self.bottleneck is not None:  # absent otherwise, so earlier configs (and digests) are unchanged
            data["bottleneck"] = asdict(self.bottleneck)
        if self.pitch is not None:
            data["pitch"] = asdict(self.pitch)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """The config a `to_dict` wrote; every field is type- and range-checked before anything is built,
        and a bad one raises ValueError naming it."""
        try:
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            for section in ("encoder", "decoder", "quantizer"):
                if not isinstance(data.get(section), dict):
                    raise TypeError(f"{section!r} must be a JSON object")
            quant = data["quantizer"]
            kind = data.get("decoder_kind", "seanet")
            if kind not in DECODERS:
                raise ValueError(f"unknown decoder_kind {kind!r}; known: {', '.join(DECODERS)}")
            if not isinstance(quant.get("kind"), str) or not isinstance(quant.get("params"), dict):
                raise TypeError("'quantizer' needs a string 'kind' and an object 'params'")
            semantic = data.get("semantic")
            if semantic is not None and not isinstance(semantic, dict):
                raise TypeError("'semantic' must be a JSON object")
            bottleneck = data.get("bottleneck")
            if bottleneck is not None and not isinstance(bottleneck, dict):
                raise TypeError("'bottleneck' must be a JSON object")
            pitch = data.get("pitch")
            if pitch is not None and not isinstance(pitch, dict):
                raise TypeError("'pitch' must be a JSON object")
            return cls(
                sample_rate=data["sample_rate"],
                encoder=SEANetConfig(**data["encoder"]),
                decoder=DECODERS[kind][0](**data["decoder"]),
                quantizer=quantizer_config(quant["kind"], quant["params"]),
                semantic=SemanticConfig(**semantic) if semantic else None,
                bottleneck=BottleneckConfig(**bottleneck) if bottleneck else None,
                pitch=PitchConfig(**pitch) if pitch else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid codec config: {err}") from err


@dataclass
class CodecOutput:
    """Training forward. audio: [B, C, T] reconstruction (zero past each length); quantizer: its output
    (codes, losses, metrics); latent: [B, D, F] encoder output; lengths: [B] valid samples; frames: [B]
    valid frames; semantic: [B, F, D_t] the semantic head's output (codecs with `config.semantic`);
    pitch: [B, F] the pitch tracker's codes and pitch_logits [B, levels, F] the decoder's prediction of
    them (codecs with `config.pitch`; logits in "predicted" mode only)."""

    audio: Tensor
    quantizer: QuantizerOutput
    latent: Tensor
    lengths: Tensor
    frames: Tensor | None = None
    semantic: Tensor | None = None
    pitch: Tensor | None = None
    pitch_logits: Tensor | None = None


class NeuralCodec(nn.Module, AudioCodec):
    """Convolutional codec: wav [B, C, T] -> codes [B, n_q, ceil(T / hop)] -> wav [B, C, T]."""

    def __init__(
        self,
        encoder: nn.Module,
        quantizer: Quantizer,
        decoder: nn.Module,
        config: CodecConfig,
        name: str = "codeclab-custom",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder
        self.config = config
        self.name = name
        self.semantic_head = SemanticHead(quantizer.dim, config.semantic) if config.semantic else None
        self.weights_sha256: str | None = None  # sha256 of the weights file it was loaded from
        self.random_init = False  # True for an untrained preset (load_codec(..., random_init=True))
        self._stream: CodecStream | None = None  # the stream of an open `with codec.streaming(...)`
        pitch = config.pitch
        self.pitch_tracker = PitchTracker(pitch, config.sample_rate, config.hop_length) if pitch else None

    @classmethod
    def from_config(cls, config: CodecConfig, name: str = "codeclab-custom") -> NeuralCodec:
        quantizer = build_quantizer(quantizer_kind(config.quantizer), asdict(config.quantizer))
        encoder: nn.Module = SEANetEncoder(config.encoder)
        decoder: nn.Module = (
            SourceFilterDecoder(config.decoder, config.pitch)
            if isinstance(config.decoder, SourceFilterDecoderConfig)
            else DECODERS[decoder_kind(config.decoder)][1](config.decoder)
        )
        if config.bottleneck is not None:
            dim, causal = config.quantizer.dim, config.causal
            encoder = BottleneckEncoder(encoder, dim, config.bottleneck, causal)
            decoder = BottleneckDecoder(decoder, dim, config.bottleneck, causal)
        return cls(encoder, quantizer, decoder, config, name)

    # -- contract properties ------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.encoder.channels

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_quantizers + (1 if self.sends_pitch else 0)

    @property
    def sends_pitch(self) -> bool:
        """True when F0 travels as a codebook of the codes (`config.pitch.index`)."""
        return self.config.pitch is not None and self.config.pitch.sent

    def quantizer_n_q(self, n_q: int) -> int:
        """Quantizer stages among the first n_q codebooks (all of them unless one carries F0)."""
        if self.sends_pitch and n_q > self.config.pitch.index:
            return n_q - 1
        return n_q

    def merge_pitch(self, codes: Tensor, pitch: Tensor | None, n_q: int) -> Tensor:
        """Quantizer codes [B, quantizer_n_q(n_q), F] and pitch codes [B, F] -> codes [B, n_q, F] (F0 at
        `pitch.index` when the first n_q codebooks reach it)."""
        if pitch is None or not self.sends_pitch or n_q <= self.config.pitch.index:
            return codes
        i = self.config.pitch.index
        return torch.cat([codes[:, :i], pitch[:, None].to(codes.dtype), codes[:, i:]], dim=1)

    def split_pitch(self, codes: Tensor) -> tuple[Tensor, Tensor | None]:
        """codes [B, n_q, F] -> (quantizer codes, pitch codes [B, F] or None). Without the pitch codebook
        (n_q at or below its index) a source-filter codec decodes every frame as unvoiced."""
        if not self.sends_pitch:  # no pitch config, or F0 predicted by the decoder
            return codes, None
        i = self.config.pitch.index
        if codes.shape[1] <= i:
            return codes, torch.zeros_like(codes[:, 0])
        return torch.cat([codes[:, :i], codes[:, i + 1 :]], dim=1), codes[:, i]

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def causal(self) -> bool:
        return self.config.causal

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating type the codec computes in (float32 unless moved with `.to(dtype)`)."""
        return next(self.parameters()).dtype

    def encoder_context(self) -> tuple[int, int] | None:
        context = receptive_field(self.encoder)
        if context is None or self.pitch_tracker is None or not self.sends_pitch:
            return context
        return max(context[0], self.pitch_tracker.history), max(context[1], self.hop_length - 1)

    def _pitch_codes(self, padded: Tensor) -> Tensor | None:
        """Pitch codes [B, F] of padded audio [B, C, F * hop] (the first channel), or None."""
        if self.pitch_tracker is None:
            return None
        return self.pitch_tracker.codes(padded[:, :1].float()).to(padded.device)

    # -- inference ------------------------------------------------------------------------------------
    def _pad(self, wav: Tensor, lengths: Tensor, min_frames: int) -> tuple[Tensor, Tensor]:
        """Zero each item past its length and pad to a whole number of frames (at least `min_frames`).
        Returns (padded wav [B, C, F_max * hop], frames [B])."""
        frames = self.frames_for(lengths)
        total = max(int(frames.max()), min_frames) * self.hop_length
        wav = mask_tail(wav, lengths)
        wav = (
            torch.nn.functional.pad(wav, (0, total - wav.shape[-1]))
            if total > wav.shape[-1]
            else wav[..., :total]
        )
        return wav, frames

    def _encode(self, wav: Tensor, lengths: Tensor | None = None, n_q: int | None = None) -> Encoded:
        """wav [B, C, T] float in [-1, 1] at the codec's rate -> Encoded(codes [B, n_q, F] int64,
        lengths [B] frames), computed in the codec's dtype."""
        wav, lengths = check_audio(wav, lengths, self.channels)
        n_q = self.check_n_q(n_q)
        device = self.device
        wav, lengths = wav.to(device=device, dtype=self.dtype), lengths.to(device)
        padded, frames = self._pad(wav, lengths, MIN_FRAMES)
        with exact_numerics(device), torch.inference_mode(), parametrize.cached():
            latent = self.encoder(padded, frames * self.hop_length)
            codes = self.quantizer.encode(latent, self.quantizer_n_q(n_q))
            if self.sends_pitch:
                codes = self.merge_pitch(codes, self._pitch_codes(padded), n_q)
        codes = codes[..., : int(frames.max())].clone()
        codes = mask_tail(codes, frames)
        return Encoded(codes, frames, lengths)

    def decoder_context(self) -> tuple[int, int] | None:
        context = getattr(self.decoder, "context_frames", None)
        return context() if context is not None else None

    def decode(self, encoded: Encoded | Tensor) -> Tensor:
        """Encoded or codes [B, n_q, F] -> wav [B, C, T'] (T' = longest item), zero past each length."""
        encoded = self.checked(encoded).to(self.device)
        out_lengths = self.decode_lengths(encoded)
        codes, pitch = self.split_pitch(encoded.codes)
        with torch.inference_mode(), parametrize.cached():
            latent = self.quantizer.decode(codes)
            if self.config.pitch is not None:
                wav = self.decoder(latent.to(self.dtype), encoded.lengths, pitch)
            else:
                wav = self.decoder(latent.to(self.dtype), encoded.lengths)
        wav = wav[..., : int(out_lengths.max())].float()
        return mask_tail(wav, out_lengths)

    # -- streaming ------------------------------------------------------------------------------------
    @property
    def latency(self) -> Latency | None:
        return codec_latency(self)

    @contextmanager
    def streaming(self, batch_size: int = 1, n_q: int | None = None) -> Iterator[CodecStream]:
        """`with codec.streaming(batch_size) as stream:` opens `batch_size` streams (docs/streaming.md);
        inside, `codec.encode_step` / `decode_step` / ... act on it too. Raises StreamingUnsupported for
        a non-causal codec."""
        stream = CodecStream(self, batch_size, n_q)
        previous, self._stream = self._stream, stream
        try:
            yield stream
        finally:
            self._stream = previous

    def _open_stream(self) -> CodecStream:
        if self._stream is None:
            raise RuntimeError(f"{self.name}: no open stream; call this inside `with codec.streaming(...):`")
        return self._stream

    def encode_step(self, wav: Tensor) -> Tensor:
        """`CodecStream.encode_step` of the open stream: chunk [B, C, n] -> codes [B, n_q, f]."""
        return self._open_stream().encode_step(wav)

    def encode_flush(self) -> Tensor:
        """`CodecStream.encode_flush` of the open stream: the last partial frame's codes."""
        return self._open_stream().encode_flush()

    def decode_step(self, codes: Tensor) -> Tensor:
        """`CodecStream.decode_step` of the open stream: codes [B, n_q, f] -> audio [B, C, samples]."""
        return self._open_stream().decode_step(codes)

    def decode_flush(self) -> Tensor:
        """`CodecStream.decode_flush` of the open stream: the audio that waited for lookahead frames."""
        return self._open_stream().decode_flush()

    # -- training -------------------------------------------------------------------------------------
    def forward(self, wav: Tensor, lengths: Tensor | None = None, n_q: int | None = None) -> CodecOutput:
        """Training pass: wav [B, C, T] -> CodecOutput (audio [B, C, T], quantizer losses and metrics)."""
        wav, lengths = check_audio(wav, lengths, self.channels)
        t = wav.shape[-1]
        padded, frames = self._pad(wav, lengths, 1)
        latent = self.encoder(padded, frames * self.hop_length)
        mask = torch.arange(latent.shape[-1], device=latent.device)[None, :] < frames[:, None]
        head = self.semantic_head
        stages = None if n_q is None else self.quantizer_n_q(n_q)
        qout = self.quantizer(latent, n_q=stages, mask=mask, prefix=head.config.codebooks if head else None)
        semantic = head(qout.prefix) if head is not None else None
        if self.config.pitch is None:
            audio = self.decoder(qout.quantized, frames)[..., :t]
            return CodecOutput(mask_tail(audio, lengths), qout, latent, lengths, frames, semantic)
        with torch.no_grad():
            pitch = self._pitch_codes(padded)
        audio, logits = self.decoder.synthesize(qout.quantized, frames, pitch)
        audio = audio[..., :t]
        return CodecOutput(mask_tail(audio, lengths), qout, latent, lengths, frames, semantic, pitch, logits)

    @torch.no_grad()
    def calibrate(self, wav: Tensor) -> None:
        """Initialise the quantizer from the encoder's latents of wav [B, C, T] (k-means for codebooks),
        as the first training batch does. Random-init presets are calibrated on a fixed synthetic signal
        so that their codes vary with the input."""
        wav, lengths = check_audio(wav, None, self.channels)
        padded, frames = self._pad(wav.to(self.device), lengths.to(self.device), 1)
        self.quantizer.initialize(self.encoder(padded, frames * self.hop_length))

    def save_pretrained(self, directory, storage_dtype: torch.dtype | None = None, extra: dict | None = None):
        """Write `model.safetensors` + `config.json` to `directory` (`codeclab.codecs.pretrained.save_pretrained`);
        `storage_dtype=torch.float16` halves the file. Returns the directory."""
        from codeclab.codecs.pretrained import save_pretrained

        return save_pretrained(self, directory, extra=extra, storage_dtype=storage_dtype)

    def parameter_counts(self) -> dict[str, int]:
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        counts = {
            "encoder": count(self.encoder),
            "quantizer": count(self.quantizer) + sum(b.numel() for b in self.quantizer.buffers()),
            "decoder": count(self.decoder),
        }
        if self.semantic_head is not None:
            counts["semantic_head (training only)"] = count(self.semantic_head)
        return counts

    def describe(self) -> dict:
        info = super().describe()
        info.update(causal=self.causal, weights_sha256=self.weights_sha256, random_init=self.random_init)
        latency = self.latency
        info["latency_ms"] = latency.as_dict() if latency is not None else None
        if self.config.semantic is not None:
            info["semantic"] = asdict(self.config.semantic)
        return info
