"""Self-supervised speech models from Hugging Face transformers as teachers: HuBERT, WavLM, wav2vec 2.0,
data2vec-audio and w2v-BERT 2.0.

`HFTeacher.from_pretrained(source, layer)` loads a local directory (or a hub id where there is internet);
`layer` picks one hidden state (0 = the input projection, N = the last layer) or "avg", the mean of all
transformer layers (SpeechTokenizer's choice for its D-axis loss). Items run one at a time, so no padding
or attention mask ever changes a feature.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import Tensor

from codeclab.catalog.peers.hf import require_transformers
from codeclab.teachers.base import Teacher, check_rate

MODEL_TYPES = ("hubert", "wavlm", "wav2vec2", "data2vec-audio", "wav2vec2-bert")


def _transformers():
    return require_transformers("Hugging Face teachers")


def parse_layer(text: str | int | None) -> int | str:
    if text is None or text == "" or text in ("avg", "mean"):
        return "avg"
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ValueError(f"teacher layer must be an integer or 'avg', got {text!r}") from None


class HFTeacher(Teacher):
    """A transformers speech encoder; features are one hidden state (or the layer average) [T_t, hidden]."""

    def __init__(self, model, feature_extractor=None, layer: int | str = "avg", name: str = "hf") -> None:
        self.model = model.eval()
        config = model.config
        if config.model_type not in MODEL_TYPES:
            raise ValueError(
                f"{name}: model type {config.model_type!r} is not a supported teacher ({', '.join(MODEL_TYPES)})"
            )
        self.feature_extractor = feature_extractor
        self.layer = parse_layer(layer)
        layers = config.num_hidden_layers
        if isinstance(self.layer, int) and not 0 <= self.layer <= layers:
            raise ValueError(f"{name}: layer must lie in [0, {layers}] or be 'avg', got {self.layer}")
        self.name = name
        self.sample_rate = 16000
        if feature_extractor is not None:
            self.sample_rate = int(getattr(feature_extractor, "sampling_rate", 16000))
        self.dim = int(config.hidden_size)
        if config.model_type == "wav2vec2-bert":
            # 10 ms filterbank frames stacked in pairs by the feature extractor: 50 frames per second
            stride = getattr(feature_extractor, "stride", 2) if feature_extractor is not None else 2
            self.frame_rate = check_rate(100.0 / stride)
        else:
            self.frame_rate = check_rate(self.sample_rate / math.prod(config.conv_stride))
        norm = getattr(config, "feat_extract_norm", "group") == "layer"
        self.normalize = bool(getattr(feature_extractor, "do_normalize", norm)) if feature_extractor else norm
        self._fingerprint: str | None = None

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source: str, layer: int | str = "avg", device: str = "cpu") -> HFTeacher:
        transformers = _transformers()
        try:
            config = transformers.AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"cannot load teacher {source!r}: {str(err).splitlines()[0]} (a hub id needs internet; "
                "pass a local directory saved with save_pretrained)"
            ) from err
        if config.model_type not in MODEL_TYPES:
            raise ValueError(
                f"{source}: model type {config.model_type!r} is not a supported teacher ({', '.join(MODEL_TYPES)})"
            )
        model = transformers.AutoModel.from_pretrained(source).to(device)
        try:
            extractor = transformers.AutoFeatureExtractor.from_pretrained(source)
        except (OSError, ValueError):
            extractor = cls._default_extractor(config)
        return cls(model, extractor, layer, name=f"{source}:{parse_layer(layer)}")

    @classmethod
    def from_config(
        cls, config, layer: int | str = "avg", seed: int = 0, name: str | None = None
    ) -> HFTeacher:
        """An untrained model built from a transformers config (tests, speed runs; nothing downloaded)."""
        transformers = _transformers()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = transformers.AutoModel.from_config(config)
        return cls(
            model,
            cls._default_extractor(config),
            layer,
            name=name or f"random-{config.model_type}:{parse_layer(layer)}",
        )

    @staticmethod
    def _default_extractor(config):
        if config.model_type == "wav2vec2-bert":
            from transformers import SeamlessM4TFeatureExtractor

            return SeamlessM4TFeatureExtractor()
        return None

    # -- features --------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{self.model.config.model_type}|{self.layer}|{self.normalize}".encode())
            for key, value in sorted(self.model.state_dict().items()):
                digest.update(key.encode())
                digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @torch.no_grad()
    def item_features(self, wav: Tensor) -> Tensor:
        device = next(self.model.parameters()).device
        if self.model.config.model_type == "wav2vec2-bert":
            inputs = self.feature_extractor(wav.numpy(), sampling_rate=self.sample_rate, return_tensors="pt")
            inputs = {k: v.to(device) for k, v in inputs.items()}
        else:
            x = wav.float()
            if x.shape[0] < 400:  # the convolutional front end needs one 25 ms window
                x = torch.nn.functional.pad(x, (0, 400 - x.shape[0]))
            if self.normalize:
                x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
            inputs = {"input_values": x[None].to(device)}
        hidden = self.model(**inputs, output_hidden_states=True).hidden_states
        if self.layer == "avg":
            out = torch.stack(hidden[1:]).mean(0)
        else:
            out = hidden[self.layer]
        return out[0].float().cpu()
