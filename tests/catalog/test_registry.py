import pytest
import torch

import codeclab


def test_presets_are_listed_with_their_facts():
    names = codeclab.list_codecs()
    assert "codeclab-16k-speech" in names
    info = codeclab.codec_info("codeclab-16k-speech")
    assert (info.sample_rate, info.frame_rate, info.num_codebooks, info.codebook_size) == (
        16000,
        50.0,
        8,
        1024,
    )
    assert info.bitrates()[0] == 500.0 and info.bitrates()[-1] == 4000.0
    assert info.causal is True


@pytest.mark.parametrize(
    "name", ["codeclab-16k-speech", "codeclab-24k-audio", "codeclab-16k-fsq", "codeclab-tiny"]
)
def test_every_preset_matches_its_entry(name):
    codec = codeclab.load_codec(name, random_init=True)
    info = codeclab.codec_info(name)
    assert (codec.sample_rate, codec.frame_rate, codec.num_codebooks, codec.codebook_size) == (
        info.sample_rate,
        info.frame_rate,
        info.num_codebooks,
        info.codebook_size,
    )
    enc = codec.encode(torch.randn(1, 1, codec.sample_rate // 2) * 0.1)
    assert enc.codes.shape == (1, codec.num_codebooks, round(codec.frame_rate / 2))


def test_random_init_is_seeded():
    a = codeclab.load_codec("codeclab-tiny", random_init=True)
    b = codeclab.load_codec("codeclab-tiny", random_init=True)
    c = codeclab.load_codec("codeclab-tiny", random_init=True, seed=1)
    wa, wb, wc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_unknown_name_and_missing_weights():
    with pytest.raises(ValueError, match="unknown codec"):
        codeclab.load_codec("no-such-codec")
    with pytest.raises(ValueError, match="random_init=True"):
        codeclab.load_codec("codeclab-16k-fsq")


def test_import_has_no_heavy_side_effects():
    import subprocess
    import sys

    code = "import sys, codeclab; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["codeclab-16k-speech", "codeclab-16k-fsq"])
def test_random_init_codes_vary_with_the_input(name):
    from codeclab.audio.signals import synthetic_speech

    codec = codeclab.load_codec(name, random_init=True)
    codes = codec.encode(synthetic_speech(2.0, codec.sample_rate, seed=5)[None]).codes
    assert codes[0, 0].unique().numel() > 0.5 * codes.shape[-1]


def test_random_init_is_identical_for_any_thread_count():
    """A random-init store made with 2 threads must decode under torchrun's 1 thread: the calibration's
    k-means must not see the thread count's float rounding."""
    import torch

    from codeclab.catalog.fingerprint import weights_sha256
    from codeclab.catalog.loading import load_codec

    threads = torch.get_num_threads()
    digests = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            digests.append(weights_sha256(load_codec("codeclab-16k-speech", random_init=True)))
    finally:
        torch.set_num_threads(threads)
    assert digests[0] == digests[1]
    assert torch.get_num_threads() == threads
