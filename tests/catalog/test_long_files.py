"""Long files through peers: `long_file_context` says how a chunked encode treats each codec (codeclab's
own: the exact encoder context; peers: a stated window), chunked codes agree with a whole pass where the
window covers the encoder's reach, and memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.chunked import encode_chunked
from tests.peak_memory import PEAK_KIB


def test_codeclab_codecs_are_exact_and_peers_state_a_window():
    tiny = codeclab.load_codec("codeclab-tiny", random_init=True)
    assert tiny.long_file_exact and tiny.long_file_context() == tiny.encoder_context()
    pytest.importorskip("snac", reason="the SNAC peer needs the snac package")
    snac = codeclab.load_codec("snac-24khz", random_init=True)
    assert snac.encoder_context() is None and not snac.long_file_exact
    assert snac.long_file_context() == (2 * snac.sample_rate, 2 * snac.sample_rate)


@pytest.mark.slow
def test_a_peer_chunked_encode_equals_a_whole_pass_within_its_window():
    """DAC (convolutional, receptive field well under the 2 s window; random-init codes vary, so the
    comparison means something): 5 s chunks give exactly the whole pass's codes (BENCHMARKS.md)."""
    pytest.importorskip("transformers", reason="peer codecs need the peers extra")
    dac = codeclab.load_codec("dac-16khz", random_init=True)
    wav = synthetic_speech(12.0, dac.sample_rate, seed=1) * 0.5
    whole = dac.encode(wav[None]).codes[0]
    assert len(torch.unique(whole[0])) > 50
    assert torch.equal(encode_chunked(dac, wav, chunk_seconds=5.0).codes[0], whole)


_PEAK = (
    PEAK_KIB
    + r"""
import json, sys, torch, codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.chunked import encode_stream
mode = sys.argv[1]
codec = codeclab.load_codec("snac-24khz", random_init=True)
rate, seconds = codec.sample_rate, 90
blocks = [synthetic_speech(5.0, rate, seed=i) * 0.5 for i in range(seconds // 5)]
before = peak_kib()
if mode == "whole":
    codes = codec.encode(torch.cat(blocks, dim=1)[None]).codes[0]
else:
    codes = encode_stream(codec, iter(blocks), chunk_seconds=5.0).codes[0]
rise = peak_kib() - before
print(json.dumps({"rise_kib": rise, "frames": codes.shape[-1]}))
"""
)


@pytest.mark.slow
def test_a_long_file_through_a_peer_is_encoded_in_bounded_memory():
    """90 s through SNAC: the chunked encode's peak memory rise is under half the whole pass's."""
    pytest.importorskip("snac", reason="the SNAC peer needs the snac package")
    runs = {}
    for mode in ("whole", "chunked"):
        out = subprocess.run([sys.executable, "-c", _PEAK, mode], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    assert runs["whole"]["frames"] == runs["chunked"]["frames"]
    assert runs["chunked"]["rise_kib"] < 0.5 * runs["whole"]["rise_kib"], runs


@pytest.mark.parametrize(("name", "frames"), [("mimi", 79), ("encodec-24khz", 473)])
def test_causal_peers_encode_a_long_file_through_a_streaming_state(monkeypatch, name, frames):
    """Mimi (transformers' own caches) and EnCodec (the adapter's carried convolution inputs and LSTM
    state) stream long files: `long_file_exact`, and the latents their quantizers receive chunk by chunk
    equal a whole pass's. (Random-init weights quantize everything to one code, so comparing codes
    alone would prove nothing.)"""
    pytest.importorskip("transformers", reason="peer codecs need the peers extra")
    codec = codeclab.load_codec(name, random_init=True)
    assert codec.long_file_exact and codec.long_file_streamer(8) is not None
    seen: list[torch.Tensor] = []
    quantize = codec.model.quantizer.encode

    def recording(latents, *args):
        seen.append(latents.clone())
        return quantize(latents, *args)

    monkeypatch.setattr(codec.model.quantizer, "encode", recording)
    wav = synthetic_speech(6.3, codec.sample_rate, seed=2) * 0.5  # a partial last frame
    whole = codec.encode(wav[None], n_q=8)
    whole_latents = seen.pop()
    chunked = encode_chunked(codec, wav, n_q=8, chunk_seconds=1.0)
    assert len(seen) == 7  # six 1 s chunks and the padded rest
    assert torch.equal(chunked.codes, whole.codes) and chunked.lengths.tolist() == [frames]
    torch.testing.assert_close(torch.cat(seen, dim=-1), whole_latents, atol=1e-4, rtol=1e-4)


def test_tokenize_sends_a_long_file_through_mimi_stream(tmp_path, monkeypatch):
    """`codeclab tokenize` over --long-seconds takes Mimi's own streaming state, chunk by chunk."""
    pytest.importorskip("transformers", reason="peer codecs need the peers extra")
    import soundfile as sf

    from codeclab.catalog.peers.transformers_codecs import MimiLongFileStream
    from codeclab.catalog.ref import CodecRef
    from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
    from codeclab.tokens.store import TokenStore

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "long.wav", synthetic_speech(3.3, 24000, seed=3)[0].numpy() * 0.5, 24000)
    chunks: list[int] = []
    encode = MimiLongFileStream.encode

    def counting(self, x):
        chunks.append(x.shape[-1])
        return encode(self, x)

    monkeypatch.setattr(MimiLongFileStream, "encode", counting)
    ref = CodecRef("mimi", random_init=True, n_q=8)

    def run(out, **kw):
        tokenize_corpus(TokenizeOptions(inputs=[str(tmp_path / "in")], out=out, codec=ref, workers=0, **kw))
        store = TokenStore(out)
        return store[next(iter(store)).id].codes

    streamed = run(tmp_path / "streamed", long_seconds=1.0, chunk_seconds=1.0)
    assert chunks == [23040, 23040, 23040, 11520]  # 12 frames of 1920 samples a chunk, the rest padded
    assert torch.equal(torch.as_tensor(streamed), torch.as_tensor(run(tmp_path / "whole")))


def test_an_encodec_that_normalises_its_input_is_not_called_exact():
    """EnCodec streams only where nothing is normalised over time; otherwise it gets the window, and
    `long_file_exact` says so."""
    transformers = pytest.importorskip("transformers", reason="peer codecs need the peers extra")
    from codeclab.catalog.peers.transformers_codecs import EncodecCodec

    model = transformers.EncodecModel(transformers.EncodecConfig(normalize=True))
    codec = EncodecCodec(model, "encodec-24khz", random_init=True, weights=None)
    assert codec.long_file_streamer() is None and not codec.long_file_exact
    assert codec.long_file_context() == (48000, 48000)
