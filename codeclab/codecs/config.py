"""`CodecConfig`: the typed config a `NeuralCodec` is built from and saved with (config.json), and
`CodecOutput`, what its training forward returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from torch import Tensor

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.modules.bottleneck import BottleneckConfig
from codeclab.codecs.modules.istft import ISTFTDecoder, ISTFTDecoderConfig
from codeclab.codecs.modules.pitch import PitchConfig
from codeclab.codecs.modules.seanet import SEANetConfig, SEANetDecoder
from codeclab.codecs.modules.source_filter import SourceFilterDecoder, SourceFilterDecoderConfig
from codeclab.codecs.semantic import SemanticConfig
from codeclab.quantizers import QuantizerConfig, QuantizerOutput, RVQConfig, SplitConfig, quantizer_config
from codeclab.quantizers.registry import config_params


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
            "quantizer": {"kind": quantizer_kind(self.quantizer), "params": config_params(self.quantizer)},
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
