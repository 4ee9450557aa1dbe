"""Chunked decoding: the blocks of `decode_stream` make the whole decode (bounded memory for long items)."""

from __future__ import annotations

import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.chunked import decode_stream
from tests.codecs.small_codecs import small_codec


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


@pytest.mark.parametrize("causal", [True, False])
def test_seanet_decoders_decode_in_chunks_too(causal):
    """Causal and centred SEANet decoders: the context walked through their transposed convolutions is
    enough for chunks to make the whole decode."""
    codec = small_codec(causal)
    before, after = codec.decoder_context()
    assert before > 0 and (after == 0) == codec.causal
    wav = synthetic_speech(1.9, codec.sample_rate, seed=2)[None]
    encoded = codec.encode(wav)
    whole = codec.decode(encoded)[0]
    length = int(encoded.audio_lengths[0])
    blocks = list(decode_stream(codec, encoded.items()[0], length, chunk_seconds=0.1))
    assert len(blocks) > 5
    streamed = torch.cat(blocks, dim=1)
    assert streamed.shape == whole.shape
    assert (streamed - whole).abs().max() < 1e-5


@pytest.mark.parametrize("causal", [True, False])
def test_the_walked_decoder_context_is_exactly_what_a_frame_reads(causal):
    """Autograd finds which latent frames one frame's samples depend on: exactly the walked context."""
    codec = small_codec(causal)
    before, after = codec.decoder_context()
    frames, first = 60, 30
    z = torch.randn(1, codec.quantizer.dim, frames, requires_grad=True)
    hop = codec.hop_length
    samples = codec.decoder(z)[0, :, first * hop : (first + 1) * hop]
    (samples * torch.randn_like(samples)).sum().backward()
    reads = (z.grad[0].abs().sum(0) > 0).nonzero().flatten()
    assert (int(reads.min()), int(reads.max())) == (first - before, first + after)


def test_a_decoder_with_an_lstm_has_no_bounded_context():
    from codeclab.codecs.modules.seanet import SEANetConfig, SEANetDecoder, seanet_decoder_context

    decoder = SEANetDecoder(SEANetConfig(dimension=8, n_filters=2, lstm_layers=1))
    assert seanet_decoder_context(decoder) is None


def test_context_of_the_inverse_stft_decoder(speech_codec):
    from codeclab.catalog.presets import speech_16k_v3
    from codeclab.codecs.neural import NeuralCodec

    istft = NeuralCodec.from_config(speech_16k_v3())  # version 3's decoder; version 4's carries its phase
    cfg = istft.config.decoder
    assert istft.decoder_context() == ((cfg.kernel_size - 1) * (cfg.blocks + 1), cfg.overlap - 1)
    assert speech_codec.decoder_context() is None  # unbounded: long items decode through the stream
