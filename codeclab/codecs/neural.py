"""NeuralCodec: encoder -> quantizer -> decoder, composed by injection and built from a typed config."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from codeclab.codecs.base import AudioCodec, Encoded, check_audio
from codeclab.codecs.config import DECODERS, CodecConfig, CodecOutput, decoder_kind, quantizer_kind
from codeclab.codecs.modules.bottleneck import BottleneckDecoder, BottleneckEncoder
from codeclab.codecs.modules.conv import mask_tail, receptive_field
from codeclab.codecs.modules.numerics import MIN_FRAMES, exact_numerics
from codeclab.codecs.modules.pitch import PitchTracker
from codeclab.codecs.modules.seanet import SEANetEncoder
from codeclab.codecs.modules.source_filter import SourceFilterDecoder, SourceFilterDecoderConfig
from codeclab.codecs.pretrained import (
    ADDED_BUFFERS,
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    attach_entropy_model,
    checked_weights_file,
    codec_meta,
    load_state_into,
    read_config,
    save_entropy_model,
    write_weights_dir,
)
from codeclab.codecs.semantic import SemanticHead
from codeclab.codecs.streaming import CodecStream, Latency, codec_latency
from codeclab.quantizers import (
    Quantizer,
    build_quantizer,
)


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

    def save_pretrained(
        self, directory: str | Path, storage_dtype: torch.dtype | None = None, extra: dict | None = None
    ) -> Path:
        """Write `model.safetensors` + `config.json` (with the weights' sha256) to `directory`, and the
        entropy model when the codec has one; `storage_dtype=torch.float16` halves the file (loaded back
        into fp32 parameters). Returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = codec_meta(self.name, self.random_init)
        meta["config"] = self.config.to_dict()
        meta["storage_dtype"] = str(storage_dtype or torch.float32).removeprefix("torch.")
        meta.update(extra or {})
        model = self.entropy_model()
        if model is not None:
            meta["entropy_model"] = save_entropy_model(directory, model, self.entropy_record)
        self.weights_sha256 = write_weights_dir(
            directory,
            self.state_dict(),
            meta,
            storage_dtype=storage_dtype,
            safetensors_metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)},
        )
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> NeuralCodec:
        """Rebuild a codec written by `save_pretrained`, its config checked field by field and its
        weights' sha256 checked before a module is built."""
        directory = Path(directory)
        meta = read_config(directory)
        if meta.get("kind", "neural") != "neural":
            raise TypeError(
                f"{directory} holds a {meta.get('kind')} codec, not a NeuralCodec: use load_codec"
            )
        try:
            config = CodecConfig.from_dict(meta.get("config"))
        except ValueError as err:
            raise ValueError(f"{directory / CONFIG_FILE}: {err}") from err
        path, blob = checked_weights_file(directory, meta)
        codec = cls.from_config(config, name=meta.get("name", directory.name))
        load_state_into(codec, blob, path, optional=ADDED_BUFFERS)
        codec.weights_sha256 = meta["weights_sha256"]
        codec.random_init = meta.get("random_init") is True
        attach_entropy_model(codec, directory, meta)
        return codec.to(device).eval()

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
