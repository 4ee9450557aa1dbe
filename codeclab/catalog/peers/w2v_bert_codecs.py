"""X-Codec 2 and NeuCodec from Hugging Face transformers: one FSQ codebook of 65,536 codes at 50 frames/s
from a w2v-BERT 2.0 semantic encoder beside an acoustic (BigCodec) encoder.

Both models take two inputs: the waveform and Kaldi log-mel features for w2v-BERT. transformers computes
those features with `torchaudio.compliance.kaldi.fbank`, and torchaudio does not import beside this
project's torch; the originals (the `xcodec2` and `neucodec` packages) computed them with
`SeamlessM4TFeatureExtractor` (numpy, in transformers), and so does this adapter: 80 Kaldi mel bins of
25 ms every 10 ms, each bin normalised over the item, two frames stacked (160 values per 20 ms).

Frames, per item of T samples at 16 kHz (hop 320), always ceil(T / 320) codes as the contract asks:
- X-Codec 2 pads the audio to whole frames and the feature input by half a hop each side (as the original
  does); for T not a whole number of frames the codes equal the original pipeline's (which adds one frame
  of silence when T is one).
- NeuCodec computes its features on the padded audio itself, which gives one frame fewer than the acoustic
  branch, and keeps the shorter; the adapter pads one more hop so the last partial frame is coded too (the
  original drops it; for T a whole number of frames the inputs, and so the codes, are the same).
- NeuCodec decodes at 24 kHz. `decode` returns the contract's audio at the input rate (16 kHz, resampled
  with soxr HQ), `decode_native` the model's own 24 kHz output.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codeclab.catalog.peers.hf import TransformersCodec, require_transformers
from codeclab.catalog.peers.transformers_codecs import register_transformers_peer
from codeclab.codecs.base import Encoded

SEMANTIC_FEATURE_RATE = 16000  # w2v-BERT 2.0's features are defined at 16 kHz


@lru_cache(maxsize=1)
def _feature_extractor() -> Any:
    """transformers' numpy Kaldi fbank for w2v-BERT 2.0 (the originals' `facebook/w2v-bert-2.0` extractor,
    whose settings are the class defaults)."""
    return require_transformers().SeamlessM4TFeatureExtractor()


def semantic_features(x: Tensor, pad_each_side: int) -> Tensor:
    """x [1, 1, L] at 16 kHz -> w2v-BERT input features [1, F', 160] (float32, CPU): log-mel of the audio
    zero-padded by `pad_each_side` samples, each bin normalised over the item, frame pairs stacked."""
    samples = x[0, 0].detach().float().cpu().numpy()
    samples = np.pad(samples, (pad_each_side, pad_each_side))
    out = _feature_extractor()(samples, sampling_rate=SEMANTIC_FEATURE_RATE, return_tensors="pt")
    return out["input_features"]


class W2vBertCodec(TransformersCodec):
    """An X-Codec 2-style model: `encode(input_values, input_features)` -> codes [1, 1, F]."""

    @property
    def sample_rate(self) -> int:
        return int(getattr(self.config, "input_sampling_rate", None) or self.config.sampling_rate)

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.config.downsampling_ratios))

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def codebook_size(self) -> int:
        return int(math.prod(self.config.quantization_levels))

    def feature_pad(self) -> int:
        """Zeros each side of the audio before its features are computed."""
        return 0

    def _encode_padded(self, x: Tensor, n_q: int, frames: int) -> Tensor:
        """x [1, 1, (bucket + extra_hop) * hop] -> codes [1, 1, bucket]. The features are computed on the
        item's own frames (their normalisation never sees bucket padding); padded feature frames are
        zeros that w2v-BERT's attention mask hides (the mask is only passed when there are some)."""
        hop, bucket = self.hop_length, x.shape[-1] // self.hop_length - self.extra_hop
        own = x[..., : (frames + self.extra_hop) * hop]
        features = semantic_features(own, self.feature_pad()).to(x.device, x.dtype)
        mask = None
        if bucket > frames:
            valid = features.shape[1]
            features = torch.nn.functional.pad(features, (0, 0, 0, bucket - valid))
            mask = (torch.arange(bucket, device=x.device) < valid).long()[None]
        codes = self.model.encode(x, input_features=features, input_features_mask=mask).audio_codes
        if codes.shape[-1] != bucket:
            raise RuntimeError(f"{self.name}: {codes.shape[-1]} frames for {bucket} frames of audio")
        return codes  # [1, 1, bucket]

    def _decode_item(self, codes: Tensor) -> Tensor:
        return self.model.decode(audio_codes=codes).audio_values


class Xcodec2Codec(W2vBertCodec):
    """X-Codec 2 (HKUST, Llasa's tokenizer): 16 kHz in and out, 50 frames/s, FSQ 1 x 65,536 (0.8 kbps)."""

    model_class = "Xcodec2Model"
    hub_id = "HKUSTAudio/xcodec2-hf"

    def feature_pad(self) -> int:
        return self.hop_length // 2

    @classmethod
    def default_config(cls):
        return require_transformers().Xcodec2Config()  # its defaults are HKUSTAudio/xcodec2


class NeuCodecCodec(W2vBertCodec):
    """NeuCodec (Neuphonic): X-Codec 2's layout with a 24 kHz decoder; 16 kHz in, 50 frames/s, FSQ
    1 x 65,536 (0.8 kbps). `decode` gives 16 kHz (the contract), `decode_native` 24 kHz."""

    model_class = "NeuCodecModel"
    hub_id = "neuphonic/neucodec"
    extra_hop = 1  # its features give one frame fewer than its audio

    @classmethod
    def default_config(cls):
        return require_transformers().NeuCodecConfig()  # its defaults are neuphonic/neucodec

    @property
    def output_sample_rate(self) -> int:
        """The rate the model's decoder writes (24 kHz for neuphonic/neucodec)."""
        return int(self.config.output_sampling_rate)

    def _decode_padded(self, codes: Tensor, frames: int) -> Tensor:
        """codes [1, 1, bucket] -> [1, 1, bucket * hop] at the input rate (the 24 kHz output resampled,
        soxr HQ)."""
        from codeclab.audio.io import resample

        native = self._native_padded(codes, frames).float().cpu()
        return torch.from_numpy(resample(native[0].numpy(), self.output_sample_rate, self.sample_rate))[None]

    def _native_padded(self, codes: Tensor, frames: int) -> Tensor:
        """codes [1, 1, bucket] -> the model's 24 kHz audio [1, 1, bucket * 480]; frames after `frames`
        (bucket padding) are hidden from the decoder's attention by its codes mask."""
        mask = None
        if codes.shape[-1] > frames:
            mask = (torch.arange(codes.shape[-1], device=codes.device) < frames).long()[None]
        return self.model.decode(audio_codes=codes, audio_codes_mask=mask).audio_values

    def decode_native(self, encoded: Encoded | Tensor) -> Tensor:
        """codes -> audio [B, 1, T'] at `output_sample_rate`, T' = ceil(input length * 24000 / 16000) per
        item (zero after each item's end), straight from the model (no resampling)."""
        ratio = self.output_sample_rate / self.sample_rate
        return self._decode_items(encoded, self._native_padded, ratio)


register_transformers_peer(
    "xcodec2",
    Xcodec2Codec,
    "X-Codec 2 (HKUST; Llasa's tokenizer) 16 kHz, w2v-BERT semantic + acoustic, FSQ 1 x 65536 (0.8 kbps)",
    16000,
    50.0,
    1,
    65536,
    "Apache-2.0 (transformers port)",
    "CC-BY-NC-4.0 (HKUSTAudio/xcodec2 model card)",
    causal=False,
)
register_transformers_peer(
    "neucodec",
    NeuCodecCodec,
    "NeuCodec (Neuphonic) 16 kHz in, 24 kHz out (decode gives 16 kHz; decode_native 24 kHz), "
    "FSQ 1 x 65536 (0.8 kbps)",
    16000,
    50.0,
    1,
    65536,
    "Apache-2.0",
    "Apache-2.0",
    causal=False,
)
