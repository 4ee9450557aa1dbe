"""Fixed-shape batching for compiled peers (`ItemCodec.pad_to_buckets`): the bucket arithmetic, a
compiled model seeing one shape per bucket instead of one per length, codes and audio cut back to each
item's own length, and exact results where the model cannot see the padding (a causal peer)."""

from __future__ import annotations

import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from tests.catalog.small_peers import small_peer

pytest.importorskip("transformers", reason="peer codecs need the peers extra")


@pytest.fixture(scope="module")
def dac():
    return codeclab.load_codec("dac-16khz", random_init=True)


def _batch(codec, seconds: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [int(s * codec.sample_rate) for s in seconds]
    wav = torch.zeros(len(lengths), 1, max(lengths))
    for b, n in enumerate(lengths):
        wav[b, :, :n] = synthetic_speech(n / codec.sample_rate, codec.sample_rate, seed=b)[:, :n] * 0.5
    return wav, torch.tensor(lengths)


def test_bucket_arithmetic(dac):
    dac.pad_to_buckets([2, 1])
    try:
        assert dac.bucket_frames == (50, 100)  # 50 frames/s
        assert [dac.bucket(f) for f in (1, 50, 51, 100, 101, 250)] == [50, 50, 100, 100, 200, 300]
        with pytest.raises(ValueError, match="positive seconds"):
            dac.pad_to_buckets([0])
    finally:
        dac.pad_to_buckets(None)
    assert dac.bucket(37) == 37


def test_the_model_sees_one_shape_per_bucket():
    codec = small_peer("xcodec2")  # 16 kHz, 50 frames/s
    seen: list[tuple[int, ...]] = []
    encode = codec.model.encode

    def recording(x, **kwargs):
        seen.append(tuple(x.shape))
        return encode(x, **kwargs)

    codec.model.encode = recording
    wav, lengths = _batch(codec, [0.04, 0.1, 0.12, 0.24, 0.44])
    plain = codec.encode(wav, lengths=lengths)
    assert len(set(seen)) == 5
    seen.clear()
    bucketed = codec.pad_to_buckets([0.1, 0.2]).encode(wav, lengths=lengths)
    assert sorted(set(seen)) == [(1, 1, n) for n in (1600, 3200, 6400, 9600)]  # over 0.2 s: multiples
    assert bucketed.lengths.tolist() == plain.lengths.tolist() == [2, 5, 6, 12, 22]
    # w2v-BERT masks the padded feature frames and the features are normalised over the item alone, so
    # the codes stay the unpadded ones (all equal when measured; the acoustic branch's edge may flip one)
    assert float((bucketed.codes == plain.codes).float().mean()) >= 0.9
    audio = codec.decode(bucketed)
    assert audio.shape == wav.shape and float(audio[0, :, int(lengths[0]) :].abs().sum()) == 0.0


@pytest.mark.slow
def test_a_compiled_model_sees_one_shape_per_bucket(dac):
    """torch.compile with static shapes traces the model again for every new input length; with buckets
    five lengths give two traces (counted with a backend that records each one)."""
    traces: list[tuple[int, ...]] = []

    def counting_backend(graph, example_inputs):
        traces.append(tuple(example_inputs[0].shape) if example_inputs else ())
        return graph.forward

    encode = dac.model.encode
    torch._dynamo.reset()
    dac.model.encode = torch.compile(encode, backend=counting_backend, dynamic=False)
    try:
        wav, lengths = _batch(dac, [0.3, 0.45, 0.6, 0.9, 1.7])
        dac.encode(wav, lengths=lengths)
        unbucketed = len(traces)
        traces.clear()
        torch._dynamo.reset()
        dac.pad_to_buckets([1, 2])
        enc = dac.encode(wav, lengths=lengths)
    finally:
        dac.model.encode = encode
        dac.pad_to_buckets(None)
        torch._dynamo.reset()
    assert unbucketed >= 5 and 1 <= len(traces) <= 2
    assert enc.lengths.tolist() == [15, 23, 30, 45, 85]


@pytest.mark.slow
def test_codes_and_audio_are_cut_back_to_each_item(dac):
    wav, lengths = _batch(dac, [0.37, 0.8])
    plain = dac.encode(wav, lengths=lengths)
    dac.pad_to_buckets([1])
    try:
        bucketed = dac.encode(wav, lengths=lengths)
        audio = dac.decode(bucketed)
    finally:
        dac.pad_to_buckets(None)
    assert bucketed.codes.shape == plain.codes.shape and bucketed.lengths.tolist() == plain.lengths.tolist()
    assert audio.shape == wav.shape and float(audio[0, :, int(lengths[0]) :].abs().sum()) == 0.0
    # DAC is not causal: its last frames see the extra zeros (the share is in docs/peers.md)
    assert float((bucketed.codes == plain.codes).float().mean()) > 0.8


def test_a_causal_peer_is_exact_with_buckets():
    """EnCodec's encoder and decoder are causal: padding after an item changes nothing before its end."""
    codec = codeclab.load_codec("encodec-24khz", random_init=True)
    wav, lengths = _batch(codec, [0.2, 0.45])
    plain = codec.encode(wav, lengths=lengths, n_q=8)
    plain_audio = codec.decode(plain)
    codec.pad_to_buckets([0.5])
    bucketed = codec.encode(wav, lengths=lengths, n_q=8)
    assert torch.equal(bucketed.codes, plain.codes)
    torch.testing.assert_close(codec.decode(bucketed), plain_audio, atol=1e-5, rtol=1e-4)


def test_tokenize_pads_to_buckets_records_it_and_refuses_a_codec_without_them(good_corpus, tmp_path):
    """`codeclab tokenize --bucket-seconds`: EnCodec (causal) gives the unbucketed store's codes, the
    store records the buckets (a resume with other buckets is refused), and a codeclab codec, which
    encodes padded batches itself, is refused by name."""
    from codeclab.catalog.ref import CodecRef
    from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus
    from codeclab.tokens.store import StoreError, TokenStore

    ref = CodecRef("encodec-24khz", random_init=True, n_q=4)

    def run(out, **kw):
        options = TokenizeOptions(inputs=[str(good_corpus)], out=out, codec=ref, workers=0, **kw)
        tokenize_corpus(options)
        return {r.id: r.codes.tolist() for r in TokenStore(out)}

    plain = run(tmp_path / "plain")
    bucketed = run(tmp_path / "bucketed", bucket_seconds=(1.0, 2.0))
    assert bucketed == plain and len(plain) >= 4
    assert TokenStore(tmp_path / "bucketed").metadata["bucket_seconds"] == [1.0, 2.0]
    with pytest.raises(StoreError, match="bucket_seconds"):
        run(tmp_path / "bucketed", bucket_seconds=(3.0,), resume=True)
    with pytest.raises(ValueError, match="--bucket-seconds: codeclab-tiny encodes padded batches"):
        tokenize_corpus(
            TokenizeOptions(
                inputs=[str(good_corpus)],
                out=tmp_path / "tiny",
                codec=CodecRef("codeclab-tiny", random_init=True),
                workers=0,
                bucket_seconds=(1.0,),
            )
        )
