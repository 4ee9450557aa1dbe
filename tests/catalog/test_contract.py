"""One contract, every registered token codec (ours and peers, random init)."""

import math

import pytest
import torch

import codeclab
from codeclab.catalog.fingerprint import codec_facts
from codeclab.catalog.registry import entries
from tests.catalog.small_peers import SMALL, small_peer

TOKEN_CODECS = sorted(name for name, e in entries().items() if e.family != "classic")
PEERS = sorted(name for name, e in entries().items() if e.family == "peer")
_cache: dict = {}


def peers_slow_but(*kept: str, also_slow: tuple[str, ...] = ()) -> list:
    """TOKEN_CODECS for parametrize, each peer but `kept` (and each name in `also_slow`) marked slow
    (a peer costs 5-20 s per test)."""
    return [
        pytest.param(name, marks=pytest.mark.slow)
        if (name in PEERS and name not in kept) or name in also_slow
        else name
        for name in TOKEN_CODECS
    ]


def get(name):
    if name not in _cache:
        if entries()[name].family == "peer":
            package = entries()[name].extra.get("package", "transformers")
            pytest.importorskip(package, reason=f"peer codec {name} needs the {package} package")
        # X-Codec 2 and NeuCodec: the same adapter on a small model (the published one: slow tests)
        _cache[name] = small_peer(name) if name in SMALL else codeclab.load_codec(name, random_init=True)
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
    if name == "snac-24khz":  # levels at 1, 2 and 4 codes per frame, written level by level
        frames = x.shape[-1] // codec.hop_length
        levels = model.encode(x)
        rows = [c[0].reshape(frames, k).T for c, k in zip(levels, (1, 2, 4), strict=True)]
        return torch.cat(rows)[None, :n_q]
    if name in ("xcodec2", "neucodec"):  # the originals' features (SeamlessM4T's numpy fbank)
        from codeclab.catalog.peers.w2v_bert_codecs import semantic_features

        if name == "neucodec":  # one more hop: its features give one frame fewer than its audio
            x = torch.nn.functional.pad(x, (0, codec.hop_length))
        features = semantic_features(x, codec.hop_length // 2 if name == "xcodec2" else 0)
        return model.encode(x, input_features=features).audio_codes
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
    pytest.importorskip(entries()[name].extra.get("package", "transformers"))
    with pytest.raises(ValueError, match="random_init=True"):
        codeclab.load_codec(name)


def test_provenance_and_device_are_part_of_the_contract(tmp_path):
    from codeclab.catalog.fingerprint import codec_facts
    from codeclab.catalog.loading import save_pretrained

    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    facts = codec_facts(codec)
    assert facts["name"] == "codeclab-tiny" and facts["random_init"] is True
    assert len(facts["config_sha256"]) == len(facts["weights_sha256"]) == 64
    assert codec.device == torch.device("cpu")
    save_pretrained(codec, tmp_path / "saved", storage_dtype=torch.float32)
    reloaded = codec_facts(codeclab.load_codec(tmp_path / "saved"))
    assert reloaded["weights_sha256"] == facts["weights_sha256"]  # the tensors, not the file
    assert reloaded["random_init"] is True  # saved untrained weights stay marked untrained
    with pytest.warns(DeprecationWarning, match="codec_facts"):
        assert codec.provenance() == facts  # deprecated spelling, same facts
    with pytest.warns(DeprecationWarning, match="load_codec"):
        assert type(codeclab.AudioCodec.from_pretrained(tmp_path / "saved")).__name__ == "NeuralCodec"


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


@pytest.mark.parametrize("name", peers_slow_but("encodec-24khz"))
def test_save_pretrained_round_trip(name, tmp_path):
    """Every token codec, ours and peers, saves to a directory that load_codec and from_pretrained read
    back with the same weights and codes; the saved random-init model stays marked random-init."""
    codec = get(name)
    x = audio(codec, 0.3, seed=3)
    before = codec.encode(x, n_q=min(2, codec.num_codebooks)).codes
    codeclab.save_pretrained(codec, tmp_path / "saved")
    again = type(codec).from_pretrained(tmp_path / "saved")
    assert torch.equal(again.encode(x, n_q=min(2, codec.num_codebooks)).codes, before)
    assert codec_facts(again)["weights_sha256"] == codec_facts(codec)["weights_sha256"]
    assert again.random_init is True and again.name == name
    assert isinstance(codec, torch.nn.Module)


def test_a_saved_peer_with_a_damaged_weights_file_is_refused(tmp_path):
    codec = get("encodec-24khz")
    codec.save_pretrained(tmp_path / "saved")
    weights = tmp_path / "saved" / "transformers" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        codeclab.load_codec(tmp_path / "saved")
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    from codeclab.codecs.neural import NeuralCodec

    with pytest.raises(TypeError, match="holds a peer codec, not a NeuralCodec"):
        NeuralCodec.from_pretrained(tmp_path / "saved")


def test_a_transformers_folder_gets_a_hint(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "mimi"}')
    with pytest.raises(ValueError, match=r"transformers model folder \(mimi\).*weights="):
        codeclab.load_codec(tmp_path)


@pytest.mark.parametrize("name", ["codeclab-16k-small", "encodec-24khz"])
def test_sample_rate_is_resampled_or_refused(name):
    """44.1 kHz audio with sample_rate=44100 gives the codes of the same audio resampled by hand (soxr);
    with resample=False the mismatch is refused, and the codec's own rate passes through untouched."""
    from codeclab.audio.io import resample

    codec = get(name)
    gen = torch.Generator().manual_seed(5)
    lengths = [44100 // 2, 44100 // 3]
    wav = torch.zeros(2, 1, lengths[0])
    for b, n in enumerate(lengths):
        wav[b, :, :n] = torch.randn(1, n, generator=gen) * 0.2
    enc = codec.encode(wav, lengths=torch.tensor(lengths), n_q=2, sample_rate=44100)
    for b, n in enumerate(lengths):
        by_hand = torch.from_numpy(resample(wav[b, :, :n].numpy(), 44100, codec.sample_rate))
        alone = codec.encode(by_hand[None], n_q=min(2, codec.num_codebooks))
        assert torch.equal(enc.items()[b], alone.codes[0]) and int(enc.audio_lengths[b]) == by_hand.shape[-1]
    with pytest.raises(codeclab.SampleRateMismatch, match=f"{codec.sample_rate} Hz audio, got 44100 Hz"):
        codec.encode(wav, n_q=2, sample_rate=44100, resample=False)
    x = audio(codec, 0.2)
    assert torch.equal(
        codec.encode(x, sample_rate=codec.sample_rate, resample=False).codes, codec.encode(x).codes
    )
    with pytest.raises(ValueError, match="sample_rate must be an integer from 1000"):
        codec.encode(x, sample_rate=0)


@pytest.mark.parametrize("name", peers_slow_but("mimi", also_slow=("codeclab-16k-speech",)))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_works_or_is_refused_by_name(name, dtype):
    """`codec.to(dtype)` encodes and decodes float32 audio (codes may differ a little from float32's,
    docs/api.md), or says which codec and type it cannot run in; never a raw dtype error."""
    import copy

    codec = copy.deepcopy(get(name)).to(dtype)
    x = audio(codec, 0.3, seed=4)
    try:
        enc = codec.encode(x, n_q=min(2, codec.num_codebooks))
        wav = codec.decode(enc)
    except codeclab.UnsupportedDtype as err:
        assert name in str(err) and str(dtype) in str(err)
        return
    assert enc.codes.dtype == torch.int64 and wav.dtype == torch.float32
    assert wav.shape == x.shape and bool(torch.isfinite(wav).all())
