"""The 12.5 Hz preset and its transformer bottleneck: the stated frame rate, a receptive field that is
exactly what a frame reads, exact batching, chunked == whole, and configs that round-trip."""

from __future__ import annotations

import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.chunked import decode_stream, encode_stream
from codeclab.codecs.modules.bottleneck import BottleneckConfig
from codeclab.codecs.modules.numerics import exact_numerics
from codeclab.codecs.neural import CodecConfig

NAME = "codeclab-16k-12hz"


@pytest.fixture(scope="module")
def codec():
    return codeclab.load_codec(NAME, random_init=True)


def test_the_preset_codes_at_12_5_hz_with_16_codebooks_of_1024(codec):
    assert codec.frame_rate == 12.5 and codec.hop_length == 1280 and codec.causal
    assert (codec.num_codebooks, codec.codebook_size) == (16, 1024)
    entry = codeclab.catalog.registry.get_entry(NAME)
    assert entry.frame_rate == 12.5
    codes = codec.encode(synthetic_speech(2.0, 16000, seed=1)[None]).codes
    assert codes.shape == (1, 16, 25)  # 2 s at 12.5 frames per second
    assert codec.latency.frame_ms == 80.0


def test_the_encoder_context_is_exactly_what_a_latent_frame_reads(codec):
    """A change just outside the stated context leaves a frame's latent as it was; one at its edge
    changes it (so chunked encoding with that context is exact, and not by luck)."""
    before, _ = codec.encoder_context()
    hop, frame = codec.hop_length, 40
    x = synthetic_speech(6.0, 16000, seed=2)[None][..., : 64 * hop]  # whole frames: the encoder alone
    first = frame * hop - before  # the earliest sample frame `frame` reads

    def latent(wav):
        with torch.inference_mode(), exact_numerics(wav.device):
            return codec.encoder(wav)[..., frame]

    reference = latent(x)
    outside, edge = x.clone(), x.clone()
    outside[..., first - 1] += 0.5
    edge[..., first] += 0.5
    assert torch.equal(latent(outside), reference)
    assert not torch.equal(latent(edge), reference)


def test_padded_batch_equals_single_items(codec):
    torch.manual_seed(3)
    lengths = [32000, 777, 12345, 20000]
    batch = torch.randn(len(lengths), 1, max(lengths)) * 0.3
    encoded = codec.encode(batch, lengths=torch.tensor(lengths))
    for i, n in enumerate(lengths):
        alone = codec.encode(batch[i : i + 1, :, :n])
        assert torch.equal(encoded.items()[i], alone.codes[0]), f"item {i} differs"


def test_chunked_encode_and_decode_equal_the_whole_pass(codec):
    wav = synthetic_speech(9.0, 16000, seed=5)[None]
    whole = codec.encode(wav)
    blocks = [wav[0, :, i : i + 7000] for i in range(0, wav.shape[-1], 7000)]
    chunked = encode_stream(codec, blocks, chunk_seconds=2.0)
    assert torch.equal(chunked.codes, whole.codes)
    length = wav.shape[-1]
    audio = torch.cat(list(decode_stream(codec, whole.codes[0], length, chunk_seconds=2.0)), dim=-1)
    reference = codec.decode(whole)[0, :, :length]
    assert audio.shape == reference.shape and (audio - reference).abs().max() < 1e-4


def test_configs_with_a_bottleneck_round_trip_and_others_keep_their_digest():
    config = codeclab.catalog.presets.speech_16k_12hz()
    assert CodecConfig.from_dict(config.to_dict()) == config
    assert "bottleneck" not in codeclab.catalog.presets.speech_16k().to_dict()  # older digests unchanged
    with pytest.raises(ValueError, match="'bottleneck' must be a JSON object"):
        CodecConfig.from_dict({**config.to_dict(), "bottleneck": [4]})
    with pytest.raises(ValueError, match="layer_scale"):
        BottleneckConfig(layer_scale=0.0)
