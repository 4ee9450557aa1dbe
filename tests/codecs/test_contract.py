"""One contract, every registered token codec (ours and peers, random init)."""

import math

import pytest
import torch

import codeclab
from codeclab.codecs.registry import entries

TOKEN_CODECS = sorted(name for name, e in entries().items() if e.family != "classic")
PEERS = sorted(name for name, e in entries().items() if e.family == "peer")
_cache: dict = {}


def get(name):
    if name not in _cache:
        if entries()[name].family == "peer":
            pytest.importorskip("transformers", reason="peer codecs need the peers extra")
        _cache[name] = codeclab.load_codec(name, random_init=True)
    return _cache[name]


def audio(codec, seconds, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, codec.channels, int(seconds * codec.sample_rate), generator=gen) * 0.2


@pytest.mark.parametrize("name", TOKEN_CODECS)
def test_facts_match_the_registry(name):
    codec, entry = get(name), entries()[name]
    assert (codec.sample_rate, codec.num_codebooks, codec.codebook_size) == (
        entry.sample_rate,
        entry.num_codebooks,
        entry.codebook_size,
    )
    assert codec.frame_rate == pytest.approx(entry.frame_rate)


@pytest.mark.parametrize("name", TOKEN_CODECS)
def test_shapes_lengths_dtype_for_odd_lengths(name):
    codec = get(name)
    hop = codec.hop_length
    lengths = [3 * hop + 1, hop - 7, int(0.37 * codec.sample_rate)]
    batch = torch.zeros(3, codec.channels, max(lengths))
    for i, n in enumerate(lengths):
        batch[i, :, :n] = audio(codec, n / codec.sample_rate, seed=i)[0, :, :n]
    enc = codec.encode(batch, lengths=torch.tensor(lengths))
    assert enc.codes.dtype == torch.int64 and enc.codes.shape[:2] == (3, codec.num_codebooks)
    assert enc.lengths.tolist() == [math.ceil(n / hop) for n in lengths]
    assert enc.codes.shape[2] == max(enc.lengths.tolist())
    assert int(enc.codes.min()) >= 0 and int(enc.codes.max()) < codec.codebook_size
    wav = codec.decode(enc)
    assert wav.shape == (3, codec.channels, max(lengths))
    assert float(wav[1, :, lengths[1] :].abs().sum()) == 0.0


@pytest.mark.parametrize("name", TOKEN_CODECS)
def test_batched_equals_single(name):
    codec = get(name)
    items = [audio(codec, s, seed=i) for i, s in enumerate((0.41, 0.23, 0.3))]
    longest = max(x.shape[-1] for x in items)
    batch = torch.zeros(len(items), codec.channels, longest)
    for i, x in enumerate(items):
        batch[i, :, : x.shape[-1]] = x[0]
    enc = codec.encode(batch, lengths=torch.tensor([x.shape[-1] for x in items]))
    for i, x in enumerate(items):
        assert torch.equal(enc.items()[i], codec.encode(x).codes[0]), f"item {i} differs"


@pytest.mark.parametrize("name", TOKEN_CODECS)
def test_n_q_selection_keeps_a_prefix(name):
    codec = get(name)
    x = audio(codec, 0.3, seed=3)
    full = codec.encode(x).codes
    for n_q in sorted({1, max(1, codec.num_codebooks // 2), codec.num_codebooks}):
        codes = codec.encode(x, n_q=n_q).codes
        assert codes.shape[1] == n_q
        assert torch.equal(codes, full[:, :n_q])
    assert codec.decode(codec.encode(x, n_q=1)).shape == x.shape


@pytest.mark.parametrize("name", TOKEN_CODECS)
def test_bad_input_is_a_clear_error(name):
    codec = get(name)
    n = codec.hop_length * 2
    bad = [
        (torch.zeros(codec.channels, n), "shape"),
        (torch.zeros(1, codec.channels + 1, n), "channel"),
        (torch.full((1, codec.channels, n), float("nan")), "NaN"),
        (torch.zeros(1, codec.channels, 0), "empty"),
    ]
    for wav, message in bad:
        with pytest.raises(ValueError, match=message):
            codec.encode(wav)
    with pytest.raises(ValueError, match="n_q"):
        codec.encode(torch.zeros(1, codec.channels, n), n_q=codec.num_codebooks + 1)


def _direct(name, codec, x, n_q):
    """The same model called directly through transformers, on the same (frame-padded) input."""
    model = codec.model
    if name == "encodec-24khz":
        bw = {2: 1.5, 4: 3.0, 8: 6.0, 16: 12.0, 32: 24.0}[n_q]
        return model.encode(x, bandwidth=bw).audio_codes[0]
    if name.startswith("dac"):
        return model.encode(x, n_quantizers=n_q).audio_codes[:, :n_q]
    if name == "mimi":
        return model.encode(x, num_quantizers=n_q).audio_codes
    if name == "xcodec":
        bw = {1: 0.5, 2: 1.0, 3: 1.5, 4: 2.0, 8: 4.0}[n_q]
        return model.encode(x, bandwidth=bw).audio_codes
    raise AssertionError(name)


@pytest.mark.parametrize("name", PEERS)
def test_adapter_codes_equal_a_direct_transformers_call(name):
    codec = get(name)
    x = audio(codec, 0.5, seed=7)
    n = x.shape[-1]
    padded = torch.nn.functional.pad(x, (0, math.ceil(n / codec.hop_length) * codec.hop_length - n))
    n_q = {"encodec-24khz": 8, "xcodec": 4}.get(name, min(8, codec.num_codebooks))
    with torch.inference_mode():
        direct = _direct(name, codec, padded, n_q)
    assert torch.equal(codec.encode(x, n_q=n_q).codes, direct.long())
    with torch.inference_mode():
        direct_audio = (
            codec.model.decode(direct[None], [None]).audio_values if name == "encodec-24khz" else None
        )
    if direct_audio is not None:
        assert torch.allclose(codec.decode(codec.encode(x, n_q=n_q)), direct_audio[..., :n], atol=1e-5)


@pytest.mark.parametrize("name", PEERS)
def test_peers_need_weights_or_random_init(name):
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="random_init=True"):
        codeclab.load_codec(name)


def test_provenance_and_device_are_part_of_the_contract(tmp_path):
    from codeclab.codecs.pretrained import save_pretrained

    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    facts = codec.provenance()
    assert facts["name"] == "codeclab-tiny" and facts["random_init"] is True
    assert len(facts["config_sha256"]) == len(facts["weights_sha256"]) == 64
    assert codec.device == torch.device("cpu")
    save_pretrained(codec, tmp_path / "saved", storage_dtype=torch.float32)
    reloaded = codeclab.load_codec(tmp_path / "saved").provenance()
    assert reloaded["weights_sha256"] == facts["weights_sha256"]  # the tensors, not the file
    assert reloaded["random_init"] is True  # saved untrained weights stay marked untrained


@pytest.mark.parametrize(
    ("codes", "lengths", "audio_lengths", "message"),
    [
        (torch.zeros(1, 2, 5, dtype=torch.long), [0], None, r"lengths must lie in \[1, 5\]"),
        (torch.zeros(1, 2, 5, dtype=torch.long), [-3], None, r"lengths must lie in \[1, 5\]"),
        (torch.zeros(1, 2, 5, dtype=torch.long), [9], None, r"lengths must lie in \[1, 5\]"),
        (
            torch.zeros(1, 2, 5, dtype=torch.long),
            torch.tensor([2.5]),
            None,
            "lengths must be an integer tensor",
        ),
        (torch.zeros(1, 2, 5), [5], None, "codes must be an integer tensor"),
        (torch.zeros(1, 2, 0, dtype=torch.long), [1], None, "must not be empty"),
        (torch.zeros(0, 2, 5, dtype=torch.long), [], None, "must not be empty"),
        (torch.zeros(1, 2, 5, dtype=torch.long), [5], [0], "audio_lengths must be positive"),
    ],
)
def test_encoded_refuses_inconsistent_lengths(codes, lengths, audio_lengths, message):
    from codeclab.codecs.base import Encoded

    lengths = torch.as_tensor(lengths, dtype=torch.long) if isinstance(lengths, list) else lengths
    audio = None if audio_lengths is None else torch.tensor(audio_lengths)
    with pytest.raises(ValueError, match=message):
        Encoded(codes, lengths, audio)


def test_decode_checks_codes_against_the_codec():
    import numpy as np

    from codeclab.codecs.base import Encoded

    codec = get("codeclab-tiny")
    good = codec.encode(audio(codec, 0.5))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 64\)"):
        codec.decode(good.codes + 64)
    with pytest.raises(ValueError, match="audio_lengths .* exceed"):
        codec.decode(Encoded(good.codes, good.lengths, good.lengths * codec.hop_length * 10))
    with pytest.raises(ValueError, match="codes have 8 codebooks; codeclab-tiny has 4"):
        codec.decode(torch.cat([good.codes] * 2, dim=1))
    assert codec.check_n_q(np.int64(2)) == 2  # numpy integers are integers
    with pytest.raises(ValueError, match="n_q must be an integer"):
        codec.check_n_q(2.0)


@pytest.mark.parametrize("name", TOKEN_CODECS)
def test_every_codec_streams_or_says_why_not(name):
    """Causal codeclab codecs stream (tests/codecs/test_streaming.py); every other codec, peers
    included, raises StreamingUnsupported naming itself, and reports no latency."""
    from codeclab.codecs.streaming import StreamingUnsupported

    codec = get(name)
    if entries()[name].family == "codeclab" and codec.causal:
        with codec.streaming() as stream:
            assert stream.encode_step(audio(codec, 0.1)).shape[1] == codec.num_codebooks
        assert codec.latency.encode_ms == 1000 * codec.hop_length / codec.sample_rate
    else:
        with pytest.raises(StreamingUnsupported, match=name):
            with codec.streaming():
                pass
        assert codec.latency is None
