"""Codecs: the `AudioCodec` contract, `NeuralCodec`, presets, pretrained I/O and peer adapters."""

from codeclab.codecs.base import AudioCodec, Encoded, check_audio
from codeclab.codecs.loading import codec_info, list_codecs, load_codec
from codeclab.codecs.neural import CodecConfig, CodecOutput, NeuralCodec
from codeclab.codecs.pretrained import load_pretrained, save_pretrained

__all__ = [
    "AudioCodec",
    "Encoded",
    "check_audio",
    "NeuralCodec",
    "CodecConfig",
    "CodecOutput",
    "load_codec",
    "list_codecs",
    "codec_info",
    "save_pretrained",
    "load_pretrained",
]
