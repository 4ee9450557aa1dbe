"""codeclab's own codec presets.

Design rule: tokenizing a corpus runs only the encoder, so encoders are light (16-24 base filters, one
residual unit per stage) and capacity sits in the decoder.

Weights: a preset with a directory under `codeclab/catalog/weights/<name>/` (safetensors + config.json with
its sha256) loads it by default; `random_init=True` builds an untrained one; `weights=DIR` loads weights
you trained. Each preset has a version (PRESET_VERSIONS), bumped when its architecture changes, so that
weights made for another version are refused with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from codeclab.catalog.registry import register_codec
from codeclab.codecs.base import WeightsNeeded
from codeclab.codecs.modules.bottleneck import BottleneckConfig
from codeclab.codecs.modules.istft import ISTFTDecoderConfig
from codeclab.codecs.modules.pitch import PitchConfig
from codeclab.codecs.modules.seanet import SEANetConfig
from codeclab.codecs.modules.source_filter import SourceFilterDecoderConfig
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.codecs.pretrained import read_config
from codeclab.quantizers import FSQConfig, RVQConfig, SplitConfig

CODE_LICENCE = "Apache-2.0"
NO_WEIGHTS = "n/a"
BUNDLED_WEIGHTS = Path(__file__).parent / "weights"
# Bumped when a preset's architecture changes: weights saved for another version are refused.
PRESET_VERSIONS: dict[str, int] = {"codeclab-16k-speech": 4}
# Licence and model card of bundled weights.
WEIGHTS_INFO: dict[str, dict[str, str]] = {
    "codeclab-16k-speech": {
        "licence": "CC-BY-SA-3.0 (trained on CC-BY-SA-3.0 and GPL-2+ recordings; see the card)",
        "card": "docs/models/codeclab-16k-speech.md",
    },
    "codeclab-16k-12hz": {
        "licence": "CC-BY-SA-3.0 (trained on CC-BY-SA-3.0 and GPL-2+ recordings; see the card)",
        "card": "docs/models/codeclab-16k-12hz.md",
    },
}


def preset_version(name: str) -> int:
    return PRESET_VERSIONS.get(name, 1)


def bundled_weights(name: str) -> Path | None:
    """The directory of the weights shipped in the package for preset `name`, or None."""
    directory = BUNDLED_WEIGHTS / name
    return directory if (directory / "config.json").is_file() else None


def _encoder(channels: int, dim: int, n_filters: int, ratios: list[int], causal: bool) -> SEANetConfig:
    return SEANetConfig(
        channels=channels,
        dimension=dim,
        n_filters=n_filters,
        ratios=ratios,
        n_residual_layers=1,
        residual_kernel_size=3,
        dilation_base=2,
        activation="elu",
        causal=causal,
    )


def _decoder(channels: int, dim: int, n_filters: int, ratios: list[int], causal: bool) -> SEANetConfig:
    return SEANetConfig(
        channels=channels,
        dimension=dim,
        n_filters=n_filters,
        ratios=ratios,
        n_residual_layers=3,
        residual_kernel_size=7,
        dilation_base=3,
        activation="snake",
        causal=causal,
    )


def speech_16k() -> CodecConfig:
    """Version 4: SEANet encoder; a split quantizer (one semantic codebook distilled from the phone teacher
    in training, as in Mimi, beside 6 residual stages) and F0 from a causal pitch tracker as codebook 2:
    8 codebooks of 1024; a frame-rate ConvNeXt decoder with a source-filter head (harmonic + noise
    excitation shaped per 5 ms sub-frame). Chosen by the equal-wall-time decoder comparison in
    docs/training.md; version 3 had an inverse-STFT head and no F0 (`speech_16k_v3`)."""
    return speech_16k_source_filter("sent")


def speech_16k_v3() -> CodecConfig:
    """Version 3 (kept for comparisons and for reading its weights outside the preset): SEANet encoder;
    split quantizer 8 x 1024; ConvNeXt decoder with an inverse-STFT head (n_fft 1280, hop 320)."""
    ratios = [2, 4, 5, 8]  # hop 320: 50 frames/s at 16 kHz
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 128, 16, ratios, causal=True),
        decoder=ISTFTDecoderConfig(dimension=128, hop=320, width=384, blocks=8, causal=True),
        quantizer=SplitConfig(dim=128, codebook_size=1024, num_quantizers=8, quantizer_dropout=0.5),
    )


def speech_16k_source_filter(pitch: str = "sent") -> CodecConfig:
    """The default's SEANet encoder and ConvNeXt stack with a source-filter head at a 5 ms hop
    (`modules.source_filter`): F0 from a causal pitch tracker, either sent as codebook 2 of 8 beside the
    split quantizer's semantic codebook and 6 residual stages (`pitch="sent"`), or predicted by the
    decoder from a split quantizer of 8 (`pitch="predicted"`). 4 kbps at n_q 8 either way."""
    ratios = [2, 4, 5, 8]
    stages = 7 if pitch == "sent" else 8
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 128, 16, ratios, causal=True),
        decoder=SourceFilterDecoderConfig(dimension=128, hop=320, width=384, blocks=8, sub_frames=4),
        quantizer=SplitConfig(dim=128, codebook_size=1024, num_quantizers=stages, quantizer_dropout=0.5),
        pitch=PitchConfig(mode=pitch),
    )


def speech_16k_subframe_complex() -> CodecConfig:
    """Design control: the default with a complex (magnitude and phase) head at the same 5 ms hop as the
    source-filter head, and no F0 (docs/training.md, decoder comparison)."""
    ratios = [2, 4, 5, 8]
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 128, 16, ratios, causal=True),
        decoder=SourceFilterDecoderConfig(
            dimension=128, hop=320, width=384, blocks=8, sub_frames=4, head="complex"
        ),
        quantizer=SplitConfig(dim=128, codebook_size=1024, num_quantizers=8, quantizer_dropout=0.5),
    )


def speech_16k_12hz() -> CodecConfig:
    """The LLM-rate preset: the default's 50 Hz SEANet encoder and inverse-STFT decoder around a
    bottleneck that strides to 12.5 Hz with a 2-layer causal transformer on each side of the quantizer
    (as in Mimi), and RVQ 16 x 1024: 0.125 kbps per codebook, 0.5 / 1 / 2 kbps at n_q 4 / 8 / 16
    (docs/llm.md). Experimental (docs/models/codeclab-16k-12hz.md)."""
    ratios = [2, 4, 5, 8]  # hop 320 (50 Hz) in the convolutions; 1280 (12.5 Hz) for the codes
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 128, 16, ratios, causal=True),
        decoder=ISTFTDecoderConfig(dimension=128, hop=320, width=384, blocks=8, causal=True),
        quantizer=RVQConfig(dim=128, codebook_size=1024, num_quantizers=16, quantizer_dropout=0.5),
        bottleneck=BottleneckConfig(stride=4, layers=2, heads=4, window=16),
    )


def audio_24k() -> CodecConfig:
    ratios = [2, 4, 5, 8]  # hop 320: 75 frames/s at 24 kHz
    return CodecConfig(
        sample_rate=24000,
        encoder=_encoder(1, 128, 24, ratios, causal=False),
        decoder=_decoder(1, 128, 48, ratios, causal=False),
        quantizer=RVQConfig(dim=128, codebook_size=1024, num_quantizers=8, quantizer_dropout=0.5),
    )


def fsq_16k() -> CodecConfig:
    ratios = [2, 4, 5, 8]
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 128, 16, ratios, causal=True),
        decoder=_decoder(1, 128, 32, ratios, causal=True),
        quantizer=FSQConfig(dim=128, levels=[8, 8, 8, 5, 5, 5]),
    )


def tiny() -> CodecConfig:
    ratios = [2, 4, 5, 8]
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 16, 4, ratios, causal=True),
        decoder=SEANetConfig(channels=1, dimension=16, n_filters=4, ratios=ratios, causal=True),
        quantizer=RVQConfig(dim=16, codebook_size=64, num_quantizers=4, quantizer_dropout=0.5),
    )


def small_16k() -> CodecConfig:
    """Sized for CPU experiments (minutes per thousand steps on two cores)."""
    ratios = [2, 4, 5, 8]
    return CodecConfig(
        sample_rate=16000,
        encoder=_encoder(1, 64, 8, ratios, causal=True),
        decoder=SEANetConfig(
            channels=1,
            dimension=64,
            n_filters=16,
            ratios=ratios,
            causal=True,
            activation="snake",
            n_residual_layers=1,
        ),
        quantizer=RVQConfig(dim=64, codebook_size=256, num_quantizers=4, quantizer_dropout=0.5),
    )


def build_preset(
    name: str,
    make_config: Callable[[], CodecConfig],
    weights: str | Path | None = None,
    random_init: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> NeuralCodec:
    """A preset codec: loaded from `weights` (a directory written by save_pretrained), or randomly
    initialised when `random_init` is asked for: seeded (two builds with one seed are identical), with
    codebooks k-means-calibrated on a fixed synthetic signal."""
    if weights is None and not random_init:
        weights = bundled_weights(name)
    if weights is not None:
        meta = read_config(weights)
        saved_version, current = meta.get("preset_version", 1), preset_version(name)
        codec = NeuralCodec.from_pretrained(weights, device=device)
        saved = codec.config.to_dict()
        saved.pop("semantic", None)  # a distilled codec is still its preset (the head is training-only)
        if saved != make_config().to_dict():  # the architecture decides; the version names the change
            if meta.get("preset") == name and saved_version != current:
                raise ValueError(
                    f"{weights}: these weights were made for version {saved_version} of the {name} preset; "
                    f"this codeclab builds version {current} (its architecture changed). Retrain "
                    "(docs/training.md) or use the codeclab release that made them."
                )
            raise ValueError(
                f"{weights}: the saved config is not the {name} preset's config (version "
                f"{current}); weights made for an earlier version of the preset need retraining"
            )
        codec.name = name
        return codec
    if not random_init:
        raise WeightsNeeded(
            f"codec {name!r} has no bundled weights: pass weights=DIR (a directory written by "
            "save_pretrained, e.g. from `codeclab train`) or random_init=True for an untrained codec",
            f"codec {name!r} has no bundled weights: pass --weights DIR (a directory written by "
            "`codeclab train` or save_pretrained) or --random-init for an untrained codec",
        )
    from codeclab.audio.signals import calibration_signal

    # one thread: a parallel reduction's float rounding depends on the thread count, and the calibration's
    # k-means would turn that into different codebooks, so a seeded codec is the same on every machine
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(seed)
        codec = NeuralCodec.from_config(make_config(), name=name)
        # Random codebooks would sit far from the latents and give one code for every frame; k-means on a
        # fixed synthetic signal gives codes that vary with the input, as after a first training step.
        codec.calibrate(calibration_signal(codec.sample_rate, seed=seed)[None])
    codec.random_init = True
    return codec.to(device).eval()


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _preset(name: str, make_config: Callable[[], CodecConfig], description: str) -> None:
    config = make_config()

    def factory(weights: str | None = None, random_init: bool = False, device="cpu", seed: int = 0):
        return build_preset(name, make_config, weights, random_init, device, seed)

    bundled = bundled_weights(name)
    info = WEIGHTS_INFO.get(name, {})
    register_codec(
        name=name,
        family="codeclab",
        description=description,
        sample_rate=config.sample_rate,
        channels=config.encoder.channels,
        frame_rate=config.sample_rate / config.hop_length,
        num_codebooks=config.num_codebooks,
        codebook_size=config.quantizer.codebook_size,
        source="codeclab",
        code_licence=CODE_LICENCE,
        weights_licence=info.get("licence", NO_WEIGHTS) if bundled else NO_WEIGHTS,
        weights=f"bundled ({bundled})" if bundled else None,
        causal=config.causal,
        extra={
            "config": make_config,
            "card": info.get("card") if bundled else None,
            "version": preset_version(name),
        },
    )(factory)


_preset(
    "codeclab-16k-speech",
    speech_16k,
    "16 kHz mono speech, causal, 50 Hz, 8 x 1024 (codebook 1 distilled, codebook 2 F0; 0.5-4 kbps), source-filter decoder",
)
_preset(
    "codeclab-16k-12hz",
    speech_16k_12hz,
    "16 kHz mono speech, causal, 12.5 Hz (transformer bottleneck), RVQ 16 x 1024 (0.125-2 kbps), for LLMs; experimental",
)
_preset(
    "codeclab-24k-audio",
    audio_24k,
    "24 kHz mono general audio, non-causal, 75 Hz, RVQ 8 x 1024 (0.75-6 kbps)",
)
_preset(
    "codeclab-16k-fsq", fsq_16k, "16 kHz mono speech, causal, 50 Hz, one FSQ codebook of 64,000 (0.8 kbps)"
)
_preset(
    "codeclab-16k-small",
    small_16k,
    "small 16 kHz speech codec, causal, 50 Hz, RVQ 4 x 256 (0.4-1.6 kbps), for CPU training experiments",
)
_preset("codeclab-tiny", tiny, "tiny 16 kHz causal codec (RVQ 4 x 64) for tests and pipeline smoke runs")


def bundle_weights(source: str | Path, name: str, storage_dtype: torch.dtype | None = torch.float16) -> Path:
    """Copy trained weights (a directory written by save_pretrained, e.g. RUN/codec) into the package as
    preset `name`'s bundled weights, stored as `storage_dtype`, training-only buffers kept and a
    distillation head dropped (recorded as `distilled` in config.json). Checks that the weights are the
    preset's architecture first. Returns the bundled directory."""
    codec = build_preset(name, _config_of(name), weights=str(source))
    meta = read_config(source)
    extra = {k: meta[k] for k in ("trained_steps",) if k in meta}
    extra.update(preset=name, preset_version=preset_version(name), source_sha256=meta.get("weights_sha256"))
    semantic = codec.config.semantic
    if semantic is not None:  # the distillation head is training-only, and its teacher a local path
        extra["distilled"] = {
            "teacher": Path(semantic.teacher).name,
            "loss": semantic.loss,
            "weight": semantic.weight,
            "codebooks": semantic.codebooks,
        }
        codec.config = replace(codec.config, semantic=None)
        codec.semantic_head = None
    target = BUNDLED_WEIGHTS / name
    codec.save_pretrained(target, extra=extra, storage_dtype=storage_dtype)
    NeuralCodec.from_pretrained(target)  # the bundled copy loads and its sha256 checks
    return target


def _config_of(name: str) -> Callable[[], CodecConfig]:
    from codeclab.catalog.registry import get_entry

    return get_entry(name).extra["config"]
