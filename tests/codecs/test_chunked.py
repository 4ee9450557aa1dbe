"""Chunked decoding: the blocks of `decode_stream` make the whole decode (bounded memory for long items)."""

from __future__ import annotations

import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.chunked import decode_stream


@pytest.fixture(scope="module")
def speech_codec():
    return codeclab.load_codec("codeclab-16k-speech")  # the bundled weights: an inverse-STFT decoder


@pytest.mark.parametrize("chunk_seconds", [0.02, 0.3, 1.1])
def test_chunks_concatenate_to_the_whole_decode(speech_codec, chunk_seconds):
    wav = synthetic_speech(2.37, 16000, seed=5)[None]
    encoded = speech_codec.encode(wav)
    whole = speech_codec.decode(encoded)[0]
    length = int(encoded.audio_lengths[0])
    blocks = list(decode_stream(speech_codec, encoded.items()[0], length, chunk_seconds))
    streamed = torch.cat(blocks, dim=1)
    assert streamed.shape == whole.shape == (1, length)
    assert (streamed - whole).abs().max() < 1e-5
    if chunk_seconds < 1:
        assert len(blocks) > 2


def test_a_decoder_without_known_context_is_refused():
    tiny = codeclab.load_codec("codeclab-tiny", random_init=True)  # SEANet decoder: context not derived
    assert tiny.decoder_context() is None
    with pytest.raises(ValueError, match="decoder's context is unknown"):
        next(decode_stream(tiny, torch.zeros(4, 10, dtype=torch.long), 3200))


def test_context_of_the_inverse_stft_decoder(speech_codec):
    cfg = speech_codec.config.decoder
    assert speech_codec.decoder_context() == ((cfg.kernel_size - 1) * (cfg.blocks + 1), cfg.overlap - 1)
