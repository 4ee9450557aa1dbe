"""EnCodec, DAC, Mimi and X-Codec from Hugging Face transformers, registered under codeclab names.

Random-init configs reproduce the published architectures (from each checkpoint's config); with real
weights, every fact (rates, codebooks) is read from the loaded model's own config.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from codeclab.catalog.peers.hf import TransformersCodec, require_transformers, smallest_setting
from codeclab.catalog.peers.item_codec import ItemLongFileStream
from codeclab.catalog.registry import register_codec

TRANSFORMERS = "Hugging Face transformers (Apache-2.0)"


def _bandwidth_map(bandwidths, frame_rate: float, codebook_size: int) -> dict[float, int]:
    """bandwidth (kbps) -> codebooks it uses: bandwidth * 1000 / (frame_rate * bits per code)."""
    bits = math.ceil(math.log2(codebook_size))
    return {float(bw): int(round(bw * 1000 / (frame_rate * bits))) for bw in bandwidths}


class EncodecCodec(TransformersCodec):
    """EnCodec 24 kHz (Meta), 75 frames/s, RVQ 32 x 1024; n_q through its bandwidths (1.5-24 kbps)."""

    model_class = "EncodecModel"
    hub_id = "facebook/encodec_24khz"

    @classmethod
    def default_config(cls):
        return require_transformers().EncodecConfig()  # its defaults are facebook/encodec_24khz

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.config.upsampling_ratios))

    @property
    def num_codebooks(self) -> int:
        return max(self._bandwidths().values())

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    def _bandwidths(self) -> dict[float, int]:
        return _bandwidth_map(self.config.target_bandwidths, self.frame_rate, self.codebook_size)

    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        out = self.model.encode(x, bandwidth=smallest_setting(self._bandwidths(), n_q))
        return out.audio_codes[0]  # [chunks=1, B, n_q, F] -> [B, n_q, F]

    def _decode_item(self, codes: Tensor) -> Tensor:
        return self.model.decode(codes[None], [None]).audio_values

    def long_file_streamer(self, n_q: int | None = None) -> EncodecLongFileStream | None:
        """EnCodec 24 kHz is causal (left-padded convolutions, a one-way LSTM) but transformers keeps no
        streaming state for it: this streamer carries each convolution's last inputs and the LSTM's state
        from chunk to chunk, so a long file's codes are a whole pass's. None for a model that normalises
        its input or its activations over time (then a window is used)."""
        config = self.config
        if config.normalize or not config.use_causal_conv or config.norm_type != "weight_norm":
            return None
        return EncodecLongFileStream(self, self.check_n_q(n_q))


class EncodecLongFileStream(ItemLongFileStream):
    """One long file through EnCodec's encoder layer by layer with carried state (`long_file_streamer`)."""

    def __init__(self, codec: EncodecCodec, n_q: int) -> None:
        super().__init__(codec, n_q)
        self.bandwidth = smallest_setting(codec._bandwidths(), n_q)
        self.inputs: dict[int, Tensor] = {}  # per convolution: its last padding_total input samples
        self.lstm_state: tuple[Tensor, Tensor] | None = None

    def _codes(self, x: Tensor) -> Tensor:
        model = self.codec.model
        hidden = x
        for layer in model.encoder.layers:
            hidden = self._layer(layer, hidden)
        return model.quantizer.encode(hidden, self.bandwidth).transpose(0, 1)  # [1, n_q', F]

    def _layer(self, layer: torch.nn.Module, hidden: Tensor) -> Tensor:
        from transformers.models.encodec.modeling_encodec import (
            EncodecConv1d,
            EncodecLSTM,
            EncodecResnetBlock,
        )

        if isinstance(layer, EncodecConv1d):
            return self._conv(layer, hidden)
        if isinstance(layer, EncodecResnetBlock):
            residual = hidden
            for sub in layer.block:
                hidden = self._layer(sub, hidden)
            return self._layer(layer.shortcut, residual) + hidden
        if isinstance(layer, EncodecLSTM):
            steps = hidden.permute(2, 0, 1)
            out, self.lstm_state = layer.lstm(steps, self.lstm_state)
            return (out + steps).permute(1, 2, 0)
        return layer(hidden)  # ELU, identity shortcut: no state

    def _conv(self, conv: Any, hidden: Tensor) -> Tensor:
        """A causal convolution over this chunk: left context from the previous chunk's inputs, or the
        model's own (reflect) padding at the file's start, as a whole pass pads it."""
        pad, key = int(conv.padding_total), id(conv)
        if key in self.inputs:
            padded = torch.cat([self.inputs[key], hidden], dim=-1)
        else:
            if hidden.shape[-1] < pad:
                raise ValueError(f"{self.codec.name}: a long file's first chunk is too short to stream")
            padded = conv._pad1d(hidden, (pad, 0), mode=conv.pad_mode)
        self.inputs[key] = padded[..., padded.shape[-1] - pad :]
        return conv.conv(padded)


class DacCodec(TransformersCodec):
    """Descript Audio Codec (16, 24 or 44.1 kHz); factorized RVQ with 8-d l2-normalised codes."""

    model_class = "DacModel"
    published: dict = {}

    @classmethod
    def default_config(cls):
        return require_transformers().DacConfig(**cls.published)

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.config.downsampling_ratios))

    @property
    def num_codebooks(self) -> int:
        return int(self.config.n_codebooks)

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        return self.model.encode(x, n_quantizers=n_q).audio_codes

    def _decode_item(self, codes: Tensor) -> Tensor:
        wav = self.model.decode(audio_codes=codes).audio_values
        return wav[:, None] if wav.ndim == 2 else wav


class Dac16k(DacCodec):
    hub_id = "descript/dac_16khz"
    published = dict(
        sampling_rate=16000,
        downsampling_ratios=[2, 4, 5, 8],
        upsampling_ratios=[8, 5, 4, 2],
        n_codebooks=12,
        codebook_size=1024,
        codebook_dim=8,
        encoder_hidden_size=64,
        decoder_hidden_size=1536,
        hidden_size=1024,
    )


class Dac24k(DacCodec):
    hub_id = "descript/dac_24khz"
    published = dict(Dac16k.published, sampling_rate=24000, n_codebooks=32)


class Dac44k(DacCodec):
    hub_id = "descript/dac_44khz"
    published = dict(
        Dac16k.published,
        sampling_rate=44100,
        downsampling_ratios=[2, 4, 8, 8],
        upsampling_ratios=[8, 8, 4, 2],
        n_codebooks=9,
    )


class MimiCodec(TransformersCodec):
    """Mimi (Kyutai), 24 kHz, 12.5 frames/s, 32 codebooks of 2048 (one semantic, then acoustic); Moshi uses 8."""

    model_class = "MimiModel"
    hub_id = "kyutai/mimi"

    @classmethod
    def default_config(cls):
        return require_transformers().MimiConfig()  # its defaults are kyutai/mimi

    @property
    def hop_length(self) -> int:
        return int(round(self.config.sampling_rate / self.config.frame_rate))

    @property
    def num_codebooks(self) -> int:
        return int(self.config.num_quantizers)

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        return self.model.encode(x, num_quantizers=n_q).audio_codes

    def _decode_item(self, codes: Tensor) -> Tensor:
        return self.model.decode(codes).audio_values

    def long_file_streamer(self, n_q: int | None = None) -> MimiLongFileStream:
        """Mimi is causal and transformers keeps its streaming state (the convolutions' padding cache and
        the encoder transformer's sliding-window cache, 250 steps): a long file goes through that state
        chunk by chunk, in memory bounded by the chunk, with the codes of a whole pass."""
        return MimiLongFileStream(self, self.check_n_q(n_q))


class MimiLongFileStream(ItemLongFileStream):
    """One long file through Mimi's own encoder caches (`long_file_streamer`)."""

    def __init__(self, codec: MimiCodec, n_q: int) -> None:
        super().__init__(codec, n_q)
        self.encoder_cache: object = None
        self.padding_cache: object = None

    def _codes(self, x: Tensor) -> Tensor:
        out = self.codec.model.encode(
            x,
            num_quantizers=self.n_q,
            encoder_cache=self.encoder_cache,
            padding_cache=self.padding_cache,
            use_streaming=True,
        )
        self.encoder_cache, self.padding_cache = out.encoder_cache, out.padding_cache
        return out.audio_codes


class XcodecCodec(TransformersCodec):
    """X-Codec (HuBERT-semantic + DAC-acoustic), 16 kHz, 50 frames/s, RVQ 8 x 1024 (0.5-4 kbps)."""

    model_class = "XcodecModel"
    hub_id = "hf-audio/xcodec-hubert-librispeech"

    @classmethod
    def default_config(cls):
        return require_transformers().XcodecConfig()  # HuBERT-base semantic model, 16 kHz

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.config.hop_length)

    @property
    def num_codebooks(self) -> int:
        return max(self._bandwidths().values())

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    def _bandwidths(self) -> dict[float, int]:
        return _bandwidth_map(self.config.target_bandwidths, self.frame_rate, self.codebook_size)

    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        return self.model.encode(x, bandwidth=smallest_setting(self._bandwidths(), n_q)).audio_codes

    def _decode_item(self, codes: Tensor) -> Tensor:
        return self.model.decode(codes).audio_values


def register_transformers_peer(
    name: str,
    cls,
    description: str,
    sample_rate: int,
    frame_rate: float,
    num_codebooks: int,
    codebook_size: int,
    code_licence: str,
    weights_licence: str,
    causal: bool | None,
    note: str = "",
) -> None:
    """Register `cls` (a TransformersCodec) under `name` with the facts `codeclab list`/`info` show."""

    def factory(weights=None, random_init=False, device="cpu", seed: int = 0):
        return cls.create(name, weights=weights, random_init=random_init, device=device, seed=seed)

    register_codec(
        name=name,
        family="peer",
        description=description,
        sample_rate=sample_rate,
        channels=1,
        frame_rate=frame_rate,
        num_codebooks=num_codebooks,
        codebook_size=codebook_size,
        source=f"{TRANSFORMERS}, pip install codeclab[peers]: {cls.model_class}",
        code_licence=code_licence,
        weights_licence=weights_licence,
        weights=cls.hub_id,
        causal=causal,
        bitrate_note=note,
        extra={"model_class": cls.model_class},
    )(factory)


register_transformers_peer(
    "encodec-24khz",
    EncodecCodec,
    "EnCodec 24 kHz (Meta); n_q 2/4/8/16/32 = 1.5/3/6/12/24 kbps, others keep a prefix",
    24000,
    75.0,
    32,
    1024,
    "MIT (original), Apache-2.0 (transformers)",
    "CC-BY-NC-4.0",
    causal=True,
)
register_transformers_peer(
    "dac-16khz", Dac16k, "Descript Audio Codec 16 kHz", 16000, 50.0, 12, 1024, "MIT", "MIT", causal=False
)
register_transformers_peer(
    "dac-24khz", Dac24k, "Descript Audio Codec 24 kHz", 24000, 75.0, 32, 1024, "MIT", "MIT", causal=False
)
register_transformers_peer(
    "dac-44khz",
    Dac44k,
    "Descript Audio Codec 44.1 kHz",
    44100,
    44100 / 512,
    9,
    1024,
    "MIT",
    "MIT",
    causal=False,
)
register_transformers_peer(
    "mimi",
    MimiCodec,
    "Mimi (Kyutai) 24 kHz, semantic first codebook; Moshi uses n_q=8 (1.1 kbps)",
    24000,
    12.5,
    32,
    2048,
    "MIT (moshi), Apache-2.0 (transformers)",
    "CC-BY-4.0",
    causal=True,
)
register_transformers_peer(
    "xcodec",
    XcodecCodec,
    "X-Codec (HuBERT semantic + acoustic) 16 kHz; n_q 1/2/3/4/8 = 0.5/1/1.5/2/4 kbps",
    16000,
    50.0,
    8,
    1024,
    "Apache-2.0 (transformers); original repo: no licence file",
    "unstated (see the model card)",
    causal=False,
)
